"""Latents ↔ transformer tokens, and the token positions LTX-2 uses for RoPE.

Video latents are ``(B, C, F, H, W)`` (``F`` latent frames = 1 + (pixel frames − 1)/8, ``H``/``W`` = pixels/32);
tokens are ``(B, F·H·W, C)`` in ``f h w`` order. Audio latents are ``(B, C, T, M)`` (8 channels × 16 mel bins,
25 latent frames per second); tokens are ``(B, T, C·M)``.

Positions are ``[start, end)`` bounds per token and axis:
* video ``(B, 3, T, 2)``: time in **seconds** (latent frame × 8 pixel frames with the causal fix
  ``max(t + 1 − 8, 0)`` — the first latent frame covers one pixel frame — divided by fps), height and width in
  **pixels** (latent index × 32);
* audio ``(B, 1, T, 2)``: time in **seconds** (latent × 4 mel frames, causal fix ``max(m + 1 − 4, 0)``, × 160/16000);
* guide tokens appended for a conditioning image/video at pixel frame ``frame_idx``: their own grid with the time
  shifted by ``frame_idx`` pixel frames (causal fix only when ``frame_idx == 0``).

ltx-core does the same in ``ltx_core.components.patchifiers`` (``VideoLatentPatchifier``, ``AudioPatchifier``,
``get_pixel_coords``), ``ltx_core.tools.VideoLatentTools`` and ``ltx_core.conditioning.mask_utils``.
"""

from __future__ import annotations

import torch

from .errors import InputError

VIDEO_SCALE = (8, 32, 32)  # pixel frames per latent frame, pixels per latent row / column
AUDIO_MEL_PER_LATENT = 4
AUDIO_HOP = 160
AUDIO_SAMPLE_RATE = 16000
AUDIO_LATENTS_PER_SECOND = AUDIO_SAMPLE_RATE / AUDIO_HOP / AUDIO_MEL_PER_LATENT  # 25


def video_to_tokens(latent: torch.Tensor) -> torch.Tensor:
    """``(B, C, F, H, W)`` → ``(B, F·H·W, C)``.

    Mirrors ``ltx_core.components.patchifiers.VideoLatentPatchifier.patchify`` with patch size 1.
    """
    return latent.flatten(2).transpose(1, 2)


def tokens_to_video(tokens: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
    """``(B, F·H·W, C)`` → ``(B, C, F, H, W)`` (``frames`` / ``height`` / ``width`` in latent cells).

    Mirrors ``ltx_core.components.patchifiers.VideoLatentPatchifier.unpatchify`` with patch size 1.
    """
    return tokens.transpose(1, 2).unflatten(2, (frames, height, width))


def audio_to_tokens(latent: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, M)`` → ``(B, T, C·M)`` (channel-major). Mirrors
    ``ltx_core.components.patchifiers.AudioPatchifier.patchify``."""
    return latent.permute(0, 2, 1, 3).flatten(2)


def tokens_to_audio(tokens: torch.Tensor, channels: int, mel_bins: int) -> torch.Tensor:
    """``(B, T, C·M)`` → ``(B, C, T, M)``. Mirrors ``ltx_core.components.patchifiers.AudioPatchifier.unpatchify``."""
    return tokens.unflatten(2, (channels, mel_bins)).permute(0, 2, 1, 3)


def _latent_grid_bounds(frames: int, height: int, width: int, device) -> torch.Tensor:
    """``(3, F·H·W, 2)`` integer ``[i, i + 1)`` bounds per axis, ``f h w`` order."""
    grids = torch.meshgrid(torch.arange(frames, device=device), torch.arange(height, device=device),
                           torch.arange(width, device=device), indexing="ij")
    starts = torch.stack([g.flatten() for g in grids])
    return torch.stack([starts, starts + 1], dim=-1)


def video_positions(
    batch: int,
    frames: int,
    height: int,
    width: int,
    fps: float,
    *,
    frame_offset: int = 0,
    causal_fix: bool | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Positions ``(B, 3, F·H·W, 2)`` of a latent grid of ``frames × height × width`` latent cells.

    Args:
        fps: pixel frame rate; time becomes seconds.
        frame_offset: pixel frame index at which this grid starts (guide tokens); 0 for the generated video.
        causal_fix: shift the time axis so the first latent frame covers one pixel frame; default: only when
            ``frame_offset == 0`` (as ``ltx_core.conditioning.types.keyframe_cond.VideoConditionByKeyframeIndex``).
        dtype: result dtype (the ltx-pipelines cast positions to the model dtype).

    Mirrors ``ltx_core.tools.VideoLatentTools.create_initial_state``'s positions
    (``VideoLatentPatchifier.get_patch_grid_bounds`` → ``get_pixel_coords`` → ÷ fps).

    Raises:
        InputError: ``fps`` is not positive.
    """
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    causal_fix = frame_offset == 0 if causal_fix is None else causal_fix
    bounds = _latent_grid_bounds(frames, height, width, device)
    pixel = bounds * torch.tensor(VIDEO_SCALE, device=bounds.device).view(3, 1, 1)
    if causal_fix:
        pixel[0] = (pixel[0] + 1 - VIDEO_SCALE[0]).clamp(min=0)
    pixel = pixel.float()
    pixel[0] = (pixel[0] + frame_offset) / fps
    return pixel.unsqueeze(0).expand(batch, -1, -1, -1).to(dtype)


def audio_positions(
    batch: int,
    frames: int,
    *,
    offset: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Positions ``(B, 1, T, 2)`` in seconds of ``frames`` audio latent frames starting at latent frame ``offset``.

    Mirrors ``ltx_core.components.patchifiers.AudioPatchifier.get_patch_grid_bounds``.
    """

    def seconds(first: int) -> torch.Tensor:
        mel = torch.arange(first, first + frames, dtype=torch.float32, device=device) * AUDIO_MEL_PER_LATENT
        mel = (mel + 1 - AUDIO_MEL_PER_LATENT).clip(min=0)
        return mel * AUDIO_HOP / AUDIO_SAMPLE_RATE

    bounds = torch.stack([seconds(offset), seconds(offset + 1)], dim=-1)  # (T, 2)
    return bounds[None, None].expand(batch, 1, -1, -1).to(dtype)


def guide_attention_weights(
    existing: torch.Tensor | None,
    *,
    num_noisy: int,
    num_existing: int,
    num_new: int,
    strength: float | torch.Tensor,
    batch: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Grow the ``(B, N, N)`` self-attention weights when ``num_new`` guide tokens are appended.

    Noisy tokens and the new guide tokens attend to each other with ``strength`` (a float, or ``(M,)`` /
    ``(B, M)`` per guide token); guide groups do not attend to each other; everything else keeps its weight
    (1 where there was no mask yet). Returns ``(B, N + M, N + M)`` in ``[0, 1]``; ``existing`` is ``(B, N, N)`` or
    None.

    Mirrors ``ltx_core.conditioning.mask_utils.update_attention_mask`` / ``build_attention_mask`` (ltx-core returns
    None while no guide sets an attention strength; this function always builds the weights).

    Raises:
        InputError: ``strength`` is not a scalar, ``(M,)`` or ``(B, M)``.
    """
    if isinstance(strength, (int, float)):
        cross = torch.full((batch, num_new), float(strength), device=device, dtype=dtype)
    else:
        cross = strength.to(device=device, dtype=dtype)
        cross = cross.expand(batch, num_new) if cross.ndim <= 1 or cross.shape[0] == 1 else cross
    if cross.shape != (batch, num_new):
        raise InputError(f"strength must be a scalar, (M,) or (B, M) with M = {num_new}; got {tuple(cross.shape)}")
    total = num_existing + num_new
    out = torch.zeros(batch, total, total, device=device, dtype=dtype)
    out[:, :num_existing, :num_existing] = 1.0 if existing is None else existing
    out[:, num_existing:, num_existing:] = 1.0
    out[:, :num_noisy, num_existing:] = cross.unsqueeze(1)
    out[:, num_existing:, :num_noisy] = cross.unsqueeze(2)
    return out
