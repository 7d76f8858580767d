"""Keyframe guides: encoded frames appended as guide tokens at their own time
(``ltx_core.conditioning.types.keyframe_cond.VideoConditionByKeyframeIndex``, with an attention strength wrapped as
``ltx_core.conditioning.types.attention_strength_wrapper.ConditioningItemAttentionStrengthWrapper``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import StageState


@dataclass(frozen=True)
class KeyframeGuide:
    """Append ``latent`` ``(B, C, f, H', W')`` as guide tokens whose positions start at pixel frame ``pixel_frame``
    (at the stage's fps), with denoise mask ``1 − strength``; ``attention_strength`` in [0, 1] weights attention
    between them and the video (None: no attention mask). The tokens are dropped after sampling."""

    latent: torch.Tensor
    pixel_frame: int = 0
    strength: float = 1.0
    attention_strength: float | None = None

    def apply(self, state: StageState) -> StageState:
        """The state with the guide tokens appended to the video track."""
        return state.with_video(state.video.append_guide(self.latent, self.pixel_frame, self.strength,
                                                         state.size.fps, self.attention_strength))
