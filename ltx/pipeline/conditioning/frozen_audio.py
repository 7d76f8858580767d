"""Frozen audio: the whole audio track kept as given (audio-to-video, ``ltx_pipelines.a2vid_two_stage``'s audio
state with denoise mask 0)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ...errors import InputError
from .base import StageState


@dataclass(frozen=True)
class FrozenAudio:
    """Set the audio track's denoise mask to 0 everywhere: the stage's ``audio_latent`` is kept exactly while the
    video is generated (audio-to-video).

    Raises (``apply``):
        InputError: the stage has no audio track.
    """

    def apply(self, state: StageState) -> StageState:
        """The state with the audio track frozen."""
        if state.audio is None:
            raise InputError("Frozen audio needs a stage with sound (with_audio=True and an audio latent).")
        return state.with_audio(replace(state.audio, mask=torch.zeros_like(state.audio.mask)))
