"""IC-LoRA control (depth / pose / canny / union): reference videos encoded for stage 1, the LoRA files'
``reference_downscale_factor`` metadata, and reference video files.

As ``ltx_pipelines.ic_lora.ICLoraPipeline``: each reference is resized (cover + centre crop) to 1/factor of the first
pass's size, encoded by the video VAE without the image CRF round trip, and appended after the image conditioning as
:class:`~.conditioning.ReferenceVideo` tokens in stage 1 only (the refinement after the 2× upsampler gets the images
only). Frame count (our rule; Lightricks' reader only caps the frames): frames past the video's length are dropped
and the rest cut to the longest ``8k + 1`` prefix the VAE can encode, so a shorter reference guides the start.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from ..errors import InputError
from ..tokens import VIDEO_SCALE
from .common import need
from .conditioning import Conditioning, ReferenceVideo, reference_token_mask
from .latents import VideoSize
from .media import av_reason, resize_and_center_crop
from .protocols import ModelParts
from .reference_guide import ReferenceVideoGuide

METADATA_KEY = "reference_downscale_factor"


def read_reference_downscale_factor(path: str | os.PathLike) -> int:
    """The ``reference_downscale_factor`` a LoRA file's safetensors metadata records (1 when absent): output size /
    reference size the IC-LoRA was trained with. Mirrors ``ltx_pipelines.ic_lora._read_lora_reference_downscale_
    factor`` (which logs and returns 1 on an unreadable file; here that is an error).

    Raises:
        InputError: the file cannot be read as safetensors, or the value is not a whole number ≥ 1.
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            value = (f.metadata() or {}).get(METADATA_KEY, "1")
    except (SafetensorError, OSError) as exc:
        raise InputError(f"{path}: cannot read its safetensors metadata ({exc}).") from exc
    try:
        factor = int(str(value).strip())
    except ValueError:
        factor = 0
    if factor < 1:
        raise InputError(f"{path}: metadata {METADATA_KEY}={value!r} is not a whole number ≥ 1.")
    return factor


def reference_downscale_factor(paths: Iterable[str | os.PathLike]) -> int:
    """The one reference downscale factor of a set of LoRA files: 1 unless some file records another; files that
    record different factors (other than 1) cannot be combined.

    Raises:
        InputError: two files record different factors, or a file is unreadable (see
            :func:`read_reference_downscale_factor`).
    """
    factor, source = 1, None
    for path in paths:
        value = read_reference_downscale_factor(path)
        if value == 1:
            continue
        if factor != 1 and value != factor:
            raise InputError(f"LoRAs with different {METADATA_KEY}s cannot be combined: {Path(source).name} has "
                             f"{factor}, {Path(path).name} has {value}. Use one IC-LoRA at a time.")
        factor, source = value, path
    return factor


def load_video(path: str | os.PathLike, max_frames: int | None = None) -> np.ndarray:
    """Decode a video file's first video stream to uint8 RGB frames ``(F, H, W, 3)`` (at most ``max_frames``).

    Raises:
        InputError: the file is missing, has no video stream or no decodable frame.
    """
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path} has no video stream; give a video file (MP4, WebM, MOV, …).")
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"Cannot read the video {path}: {av_reason(exc)}. Give a video file (MP4, WebM, MOV, …)."
                         ) from exc
    if not frames:
        raise InputError(f"{path} has no decodable video frames.")
    return np.stack(frames)


def usable_frames(available: int, video_frames: int) -> int:
    """How many leading frames of a reference of ``available`` frames guide a video of ``video_frames`` pixel
    frames: at most the video's length, cut to ``8k + 1``."""
    n = min(available, video_frames)
    return (n - 1) // VIDEO_SCALE[0] * VIDEO_SCALE[0] + 1


def _mask_pixels(mask: np.ndarray | torch.Tensor, frames: int, size: VideoSize) -> torch.Tensor:
    """A pixel mask ``(F_m, H, W)`` / ``(H, W)`` → ``(1, 1, frames, size.height, size.width)`` float: frames cut like
    the reference's (one frame repeated), resized to cover the stage and centre-cropped (as Lightricks' mask video).

    Raises:
        InputError: the mask has fewer frames than the reference uses (and more than one).
    """
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).float().cpu()
    m = m.unsqueeze(0) if m.ndim == 2 else m
    if m.shape[0] == 1:
        m = m.expand(frames, -1, -1)
    elif m.shape[0] < frames:
        raise InputError(f"The reference attention mask has {m.shape[0]} frames but the reference video uses "
                         f"{frames}; give one mask frame (used for all) or at least {frames}.")
    m = resize_and_center_crop(m[:frames].unsqueeze(-1), size.height, size.width)  # (1, 1, F, H, W)
    return m.clamp(0.0, 1.0)


def reference_condition(vae, guide: ReferenceVideoGuide, size: VideoSize, dtype: torch.dtype,
                        device: torch.device | str) -> ReferenceVideo:
    """One reference video encoded for a stage of ``size`` (ltx-core's ``VideoConditionByReferenceLatent`` input):
    the first :func:`usable_frames` frames, resized to
    cover ``(size.height, size.width) / factor`` and centre-cropped, to ``[-1, 1]``, encoded by ``vae`` (a
    :class:`~.protocols.VideoVAEProtocol`) to ``(1, 128, f, h, w)``. Attention: the mask downsampled to the tokens
    (:func:`~.conditioning.reference_token_mask`) × ``guide.attention``; without a mask ``guide.attention`` when it
    is below 1, else None (plain attention), as ``ltx_pipelines.ic_lora.ICLoraPipeline._create_conditionings``.

    Raises:
        InputError: the stage size is not divisible by the factor into whole latent cells, or the mask's frames do
            not cover the reference's.
    """
    factor = guide.downscale_factor
    ref_h, ref_w = size.height // factor, size.width // factor
    if size.height % factor or size.width % factor or ref_h % 32 or ref_w % 32:
        raise InputError(f"reference_downscale_factor {factor}: {size.width}×{size.height} is not a multiple of "
                         f"{32 * factor} pixels per side; choose a size that is.")
    frames = torch.as_tensor(guide.frames)
    n = usable_frames(frames.shape[0], size.frames)
    pixels = resize_and_center_crop(frames[:n].float().cpu(), ref_h, ref_w)  # (1, 3, n, ref_h, ref_w)
    latent = vae.encode((pixels / 127.5 - 1.0).to(device=device, dtype=dtype))
    attention: float | torch.Tensor | None = None
    if guide.mask is not None:
        weights = reference_token_mask(_mask_pixels(guide.mask, n, size), tuple(latent.shape[2:]))
        attention = (weights * guide.attention).to(device)
    elif guide.attention < 1.0:
        attention = float(guide.attention)
    return ReferenceVideo(latent, factor, float(guide.strength), attention)


def reference_conditions(parts: ModelParts, guides: Iterable[ReferenceVideoGuide], size: VideoSize,
                         dtype: torch.dtype, device: torch.device | str) -> list[Conditioning]:
    """Every reference video of a request as :class:`~.conditioning.ReferenceVideo` s for stage 1 (see
    :func:`reference_condition`).

    Raises:
        InputError: references are given but ``parts.video_vae`` is None, or one does not fit (see above).
    """
    guides = tuple(guides)
    if not guides:
        return []
    vae = need(parts.video_vae, "video_vae", "IC-LoRA reference video conditioning")
    return [reference_condition(vae, g, size, dtype, device) for g in guides]
