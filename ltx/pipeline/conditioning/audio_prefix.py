"""Audio prefix: the first audio latent frames given and kept (the overlap of an extension)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import InputError
from ...tokens import audio_to_tokens
from .base import StageState


@dataclass(frozen=True)
class AudioPrefix:
    """Write ``latent`` ``(B, 8, n, 16)`` over the first ``n`` audio latent frames with denoise mask ``1 − strength``
    (the audio of an extension's overlap; like ``VideoConditionByLatentIndex`` at frame 0, for audio).

    Raises (``apply``):
        InputError: the stage has no audio track, or ``n`` is longer than it.
    """

    latent: torch.Tensor
    strength: float = 1.0

    def apply(self, state: StageState) -> StageState:
        """The state with the prefix written into the audio track."""
        if state.audio is None:
            raise InputError("An audio prefix needs a stage with sound (with_audio=True).")
        return state.with_audio(state.audio.replace_prefix(audio_to_tokens(self.latent), self.strength))
