"""RS LTXV Generate's IC-LoRA inputs → :class:`~rs_ltxv.ltx.pipeline.reference_guide.ReferenceVideoGuide`:
``reference_video`` (IMAGE batch, one picture per frame), ``reference_strength``, ``reference_attention``,
``reference_downscale_factor`` and the optional ``reference_mask`` (MASK ``(F, H, W)`` 0..1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..ltx.errors import InputError
from ..ltx.pipeline.reference_guide import ReferenceVideoGuide


def image_batch_to_frames(image: Any, what: str) -> torch.Tensor:
    """IMAGE ``(F, H, W, C)`` 0..1 → uint8 frames ``(F, H, W, 3)`` on the CPU.

    Raises:
        InputError: ``image`` is not an IMAGE tensor.
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[-1] < 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"{what}: expected an IMAGE batch (frames, height, width, 3); got {shape}.")
    return (image[..., :3].detach().float().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8)


def reference_guides(v: Mapping[str, Any]) -> tuple[ReferenceVideoGuide, ...]:
    """The node's reference video as a one-element tuple (empty when ``reference_video`` is not connected); ``v``
    holds every input (defaults filled).

    Raises:
        InputError: the IMAGE or MASK is not one.
    """
    image = v.get("reference_video")
    if image is None:
        return ()
    mask = v.get("reference_mask")
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3):
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise InputError(f"reference_mask: expected a MASK (frames, height, width); got {shape}.")
        mask = mask.detach().float().cpu()
    return (ReferenceVideoGuide(image_batch_to_frames(image, "reference_video"),
                                strength=float(v.get("reference_strength", 1.0)),
                                attention=float(v.get("reference_attention", 1.0)), mask=mask,
                                downscale_factor=int(v.get("reference_downscale_factor", 1))),)
