"""Frame and size rules of the video VAE: pixel frames come in 1 + 8k (first frame alone, then groups of 8)."""

from __future__ import annotations

from ..errors import InputError


def latent_frames(pixel_frames: int, temporal: int = 8) -> int:
    """Latent frames of a valid pixel frame count: ``1 + (F − 1) / 8`` (``temporal`` pixel frames per latent frame).

    Mirrors the frame rule of ``ltx_core.types.VideoLatentShape.from_pixel_shape``.
    """
    return 1 + (pixel_frames - 1) // temporal


def pixel_frames(latent_frames: int, temporal: int = 8) -> int:
    """Decoded pixel frame count of ``latent_frames``: ``1 + 8 · (F' − 1)``.

    Mirrors the frame rule of ``ltx_core.types.VideoLatentShape.upscale``.
    """
    return 1 + temporal * (latent_frames - 1)


def check_video_shape(shape: tuple[int, ...], channels: int, temporal: int, spatial: int) -> None:
    """Check that ``shape`` is ``(B, channels, 1 + temporal·k, spatial·h, spatial·w)`` (pixel frames, pixels).

    RS-LTXV does not crop silently (``ltx_core.model.video_vae.video_vae.VideoEncoder.forward`` drops the extra frames
    with a warning): the message names the nearest valid frame counts so the caller can trim or pad on purpose.

    Raises:
        InputError: ``shape`` is not of that form.
    """
    if len(shape) != 5:
        raise InputError(f"The video VAE encodes (B, C, F, H, W) tensors; got a {len(shape)}-D tensor {tuple(shape)}.")
    _b, c, f, h, w = shape
    if c != channels:
        raise InputError(f"The video VAE expects {channels} channels (RGB in [-1, 1]), got {c} in shape "
                         f"{tuple(shape)}.")
    if f < 1 or (f - 1) % temporal:
        below = 1 + temporal * ((f - 1) // temporal) if f > 1 else None
        above = 1 + temporal * (max(f - 1, 0) // temporal + 1)
        options = f"{below} or {above}" if below else f"{above}"
        raise InputError(f"{f} frames cannot be encoded: the video VAE needs 1 + {temporal}·k frames "
                         f"(1, 9, 17, 25, …). Trim or pad the video to {options} frames.")
    if h % spatial or w % spatial or h == 0 or w == 0:
        fix = f"{max(spatial, h // spatial * spatial)}×{max(spatial, w // spatial * spatial)}"
        raise InputError(f"Frame size {h}×{w} (H×W) is not a multiple of {spatial} pixels; resize or crop the "
                         f"video (e.g. to {fix}).")


def check_latent_shape(shape: tuple[int, ...], channels: int) -> None:
    """Check that ``shape`` is a latent ``(B, channels, F', H', W')`` with every size ≥ 1.

    Raises:
        InputError: ``shape`` is not of that form.
    """
    if len(shape) != 5 or shape[1] != channels or min(shape) < 1:
        raise InputError(f"The video VAE decodes (B, {channels}, F', H', W') latents; got shape {tuple(shape)}.")
