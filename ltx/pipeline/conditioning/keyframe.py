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
    between them and the video (None: no attention mask). The tokens are dropped after sampling and are never
    keyframe-marked (ltx-core 1.2.0: given guide content is not a generated keyframe slot).

    ``num_pixel_frames``: None keeps each token's time span of its latent frame (ltx-core 1.0.0); 1 (a single image)
    narrows every token's span to one pixel frame ``[t, t + 1)``, as ltx-core 1.2.0's
    ``VideoConditionByKeyframeIndex`` (default ``num_pixel_frames=1``) and diffusers 0.42.1's
    ``_prepare_keyframe_coords`` do."""

    latent: torch.Tensor
    pixel_frame: int = 0
    strength: float = 1.0
    attention_strength: float | None = None
    num_pixel_frames: int | None = None

    def apply(self, state: StageState) -> StageState:
        """The state with the guide tokens appended to the video track."""
        return state.with_video(state.video.append_guide(self.latent, self.pixel_frame, self.strength,
                                                         state.size.fps, self.attention_strength,
                                                         single_frame=self.num_pixel_frames == 1))
