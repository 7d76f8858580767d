"""An IC-LoRA reference video as part of a :class:`~.request.Request` (what the user gives; encoding is
:mod:`.ic_lora`), and its checks, run when the request is built."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InputError

LATENT_PIXELS = 32  # pixels per latent cell (height and width)


@dataclass(frozen=True)
class ReferenceVideoGuide:
    """A reference (control) video for an IC-LoRA: depth, pose, edges, … as uint8 RGB frames ``(F, H, W, 3)``; one
    entry of ``ltx_pipelines.ic_lora.ICLoraPipeline``'s ``video_conditioning`` with its attention strength and mask,
    encoded into a ``ltx_core.conditioning.VideoConditionByReferenceLatent`` equivalent.

    Attributes:
        frames: uint8 ``(F, H, W, 3)`` (a torch tensor or numpy array). It is resized to cover 1/``downscale_factor``
            of the first pass's size and centre-cropped; frames past the video's length are dropped and the rest cut
            to the longest ``8k + 1`` prefix (a shorter reference guides the start of the video only).
        strength: denoise strength kept for the reference tokens (1 = kept clean, as Lightricks' pipeline).
        attention: how strongly the reference and the video attend to each other, in [0, 1]
            (``conditioning_attention_strength``); 1 without a mask = plain attention.
        mask: optional pixel attention mask ``(F_m, H_m, W_m)`` (or ``(H_m, W_m)``, or ``F_m`` = 1: the same for every
            frame), floats in [0, 1]; multiplied by ``attention``. Its frames are cut like the reference's.
        downscale_factor: output size / reference size the IC-LoRA was trained with (its file's
            ``reference_downscale_factor`` metadata; :func:`~.ic_lora.reference_downscale_factor`).
    """

    frames: np.ndarray | torch.Tensor
    strength: float = 1.0
    attention: float = 1.0
    mask: np.ndarray | torch.Tensor | None = None
    downscale_factor: int = 1


def _number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise InputError(f"reference video {name} must be a number from 0 to 1; got {value!r}.")


def check_reference_video(guide: Any, width: int, height: int, upscale: bool) -> None:
    """One reference video of a request of ``width × height`` pixels (``upscale``: the first pass runs at half
    size): uint8 RGB frames, numbers in range, a mask of matching rank, and a first-pass size that
    ``downscale_factor`` divides into whole 32-pixel latent cells.

    Raises:
        InputError: naming the setting and what to use.
    """
    shape = tuple(getattr(guide.frames, "shape", ()))
    dtype = getattr(guide.frames, "dtype", None)
    if len(shape) != 4 or shape[3] != 3 or dtype not in (np.uint8, torch.uint8):
        raise InputError(f"A reference video must be uint8 RGB frames (F, H, W, 3); got {dtype} {shape}.")
    if shape[0] < 1 or shape[1] < 2 or shape[2] < 2:
        raise InputError(f"A reference video must have at least one frame of 2×2 pixels; got {shape}.")
    _number("strength", guide.strength)
    _number("attention", guide.attention)
    factor = guide.downscale_factor
    if isinstance(factor, bool) or not isinstance(factor, int) or not 1 <= factor <= 64:
        raise InputError(f"reference_downscale_factor must be a whole number from 1 to 64; got {factor!r}.")
    if guide.mask is not None:
        mshape = tuple(getattr(guide.mask, "shape", ()))
        if len(mshape) not in (2, 3) or min(mshape, default=0) < 1:
            raise InputError(f"A reference attention mask must be (F, H, W) or (H, W) values in [0, 1]; got "
                             f"{mshape}.")
    divisor = 2 if upscale else 1
    cell = LATENT_PIXELS * factor
    if (width // divisor) % cell or (height // divisor) % cell:
        first = f"{width // divisor}×{height // divisor}"
        raise InputError(f"reference_downscale_factor {factor}: the reference is encoded at 1/{factor} of the first "
                         f"pass's size ({first}{', half the video with upscale' if upscale else ''}), which must be "
                         f"a multiple of {cell} pixels per side; choose a width and height that are multiples of "
                         f"{cell * divisor}.")
