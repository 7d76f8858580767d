"""IC-LoRA reference video: an encoded control video (depth, pose, edges, …) appended as guide tokens whose positions
lie on the output's grid (``ltx_core.conditioning.types.reference_video_cond.VideoConditionByReferenceLatent``; an
attention weight wraps it as ``ConditioningItemAttentionStrengthWrapper``), and the pixel mask → per-token attention
weights of ``ltx_pipelines.ic_lora.ICLoraPipeline._downsample_mask_to_latent``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import InputError
from ...tokens import VIDEO_SCALE, guide_attention_weights, video_positions, video_to_tokens
from ..track import Track
from .base import StageState


@dataclass(frozen=True)
class ReferenceVideo:
    """Append the reference latent ``(B, C, f, h, w)`` as guide tokens with denoise mask ``1 − strength``.

    Positions are the reference's own latent grid from pixel frame 0 (the causal fix on: its first latent frame covers
    one pixel frame), time in seconds at the stage's fps, height and width multiplied by ``downscale_factor`` — an
    IC-LoRA trained on references at 1/factor of the output size sees them stretched over the output grid.

    ``attention_mask``: how strongly the reference and the generated tokens attend to each other — a number in
    [0, 1], or per reference token ``(M,)`` / ``(B, M)`` with ``M = f·h·w`` (:func:`reference_token_mask`); None: no
    attention weights (plain attention, unless an earlier guide set weights; then 1 for these tokens), exactly as
    ltx-core without the wrapper. The reference tokens are not keyframe-marked.

    Raises (``apply``):
        InputError: the factor is not a positive whole number, or the mask does not have one weight per token.
    """

    latent: torch.Tensor
    downscale_factor: int = 1
    strength: float = 1.0
    attention_mask: float | torch.Tensor | None = None

    def apply(self, state: StageState) -> StageState:
        """The state with the reference tokens appended to the video track."""
        if isinstance(self.downscale_factor, bool) or not isinstance(self.downscale_factor, int) \
                or self.downscale_factor < 1:
            raise InputError(f"reference downscale factor must be a whole number ≥ 1; got {self.downscale_factor!r}.")
        track = state.video
        tokens = video_to_tokens(self.latent).to(track.latent.dtype)
        b, m = tokens.shape[:2]
        positions = video_positions(b, *self.latent.shape[2:], state.size.fps, causal_fix=True,
                                    device=tokens.device, dtype=torch.float32)
        positions = positions.clone()
        positions[:, 1:] *= self.downscale_factor
        mask = torch.full((b, m, 1), 1.0 - self.strength, dtype=track.mask.dtype, device=tokens.device)
        attention = track.attention
        if self.attention_mask is not None or attention is not None:
            weights = 1.0 if self.attention_mask is None else self.attention_mask
            if isinstance(weights, torch.Tensor) and weights.ndim == 0:
                weights = float(weights)
            attention = guide_attention_weights(attention, num_noisy=track.generated,
                                                num_existing=track.latent.shape[1], num_new=m, strength=weights,
                                                batch=b, device=tokens.device)
        video = Track(torch.cat([track.latent, tokens], 1), torch.cat([track.clean, tokens], 1),
                      torch.cat([track.mask, mask], 1),
                      torch.cat([track.positions, positions.to(track.positions.dtype)], 2), attention, track.generated,
                      track.reference, track.extended_keyframes(m))
        return state.with_video(video)


def reference_token_mask(mask: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """A pixel mask ``(B, 1, F, H, W)`` in [0, 1] → per-token weights ``(B, f·h·w)`` of a latent ``grid`` ``(f, h, w)``
    in the tokens' ``f h w`` order: each frame area-averaged to ``h × w``, then the first frame kept alone (the causal
    VAE encodes it by itself) and the others averaged in groups of ``(F − 1)/(f − 1)`` frames. Mirrors
    ``ltx_pipelines.ic_lora.ICLoraPipeline._downsample_mask_to_latent``.

    Raises:
        InputError: ``mask`` is not 5-D with one channel, or ``F − 1`` is not a multiple of ``f − 1``.
    """
    if mask.ndim != 5 or mask.shape[1] != 1:
        raise InputError(f"A reference attention mask must be (B, 1, F, H, W); got {tuple(mask.shape)}.")
    f, h, w = grid
    b, _, frames = mask.shape[:3]
    spatial = torch.nn.functional.interpolate(mask.transpose(1, 2).flatten(0, 1), size=(h, w), mode="area")
    spatial = spatial.unflatten(0, (b, frames))[:, :, 0]  # (B, F, h, w)
    out = spatial[:, :1]
    if frames > 1 and f > 1:
        if (frames - 1) % (f - 1):
            raise InputError(f"A reference attention mask of {frames} frames does not fit {f} latent frames: use "
                             f"{VIDEO_SCALE[0]}·(latent frames − 1) + 1 frames, as the reference video.")
        group = (frames - 1) // (f - 1)
        rest = spatial[:, 1:].unflatten(1, (f - 1, group)).mean(2)
        out = torch.cat([out, rest], 1)
    return out.flatten(1)
