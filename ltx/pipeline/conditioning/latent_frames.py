"""Image-to-video: encoded frames written over latent frames of the video (``ltx_core.conditioning.types.latent_cond.
VideoConditionByLatentIndex``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import StageState


@dataclass(frozen=True)
class ReplaceLatentFrames:
    """Write ``latent`` ``(B, C, f, H', W')`` over latent frames ``[latent_frame, latent_frame + f)`` of the video with
    denoise mask ``1 − strength`` there (1 keeps them exactly). ``H', W'`` must be the stage's latent size.

    Raises (``apply``):
        InputError: the latent's height / width differ from the stage's, or its frames run past the end.
    """

    latent: torch.Tensor
    latent_frame: int = 0
    strength: float = 1.0

    def apply(self, state: StageState) -> StageState:
        """The state with the frames written into the video track."""
        return state.with_video(state.video.replace_frames(self.latent, self.latent_frame, self.strength,
                                                           state.size.latent_grid))
