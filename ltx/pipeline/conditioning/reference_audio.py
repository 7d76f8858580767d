"""ID-LoRA reference audio: a few seconds of reference speech appended to the audio track as reference tokens that
sit just before t = 0 (``ltx_core.conditioning.types.reference_audio_cond.AudioConditionByReferenceLatent`` with the
positions of ``ltx_pipelines.dubit.patchify_dubit_audio_reference_latent(..., negative_positions=True)``, ltx-core
1.2.0).

ComfyUI's ``LTXVReferenceAudio`` / ``LTXAVModel`` put the same tokens *before* the target audio with timestep 0; audio
self-attention has no mask and RoPE depends on positions only, so the order does not change the result
(``tests/test_reference_audio.py`` checks it on a tiny model).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import InputError
from ...tokens import (
    AUDIO_HOP,
    AUDIO_MEL_PER_LATENT,
    AUDIO_SAMPLE_RATE,
    audio_positions,
    audio_to_tokens,
    guide_attention_weights,
)
from ..track import Track
from .base import StageState

#: seconds of one audio latent frame (4 mel frames × 160 samples at 16 kHz = 0.04 s): the gap left between the end
#: of the reference and t = 0
AUDIO_LATENT_SECONDS = AUDIO_MEL_PER_LATENT * AUDIO_HOP / AUDIO_SAMPLE_RATE


def reference_audio_positions(batch: int, frames: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Float32 positions ``(B, 1, T_ref, 2)`` in seconds of ``frames`` reference latent frames: the audio positions of
    frames ``0 … T_ref − 1`` (:func:`~rs_ltxv.ltx.tokens.audio_positions`) shifted by ``−(end of the last frame +
    0.04 s)``, so the reference ends one latent frame before t = 0. Mirrors ``patchify_dubit_audio_reference_latent``
    (``positions − aud_dur − 0.04``) and ComfyUI's ``time_offset = ref_end[-1] + tpl``."""
    positions = audio_positions(batch, frames, device=device, dtype=torch.float32)
    duration = positions[:, :, -1, 1].max().item() if frames else 0.0
    return positions - duration - AUDIO_LATENT_SECONDS


@dataclass(frozen=True)
class ReferenceAudio:
    """Append the reference audio latent ``(B, 8, T_ref, 16)`` (B = 1 or the stage's batch) to the audio track as
    ``T_ref`` reference tokens: latent = clean = the tokens, denoise mask ``1 − strength`` (1 keeps them exactly),
    positions :func:`reference_audio_positions` (ltx-core 1.2.0 starts their noisy value at zeros; its noiser then
    yields the same tokens wherever the mask is 0, i.e. at the default strength 1). The track records them in
    ``Track.reference`` so the denoiser's identity guidance can run a pass without them; they are dropped after
    sampling with the other guide tokens.

    Raises (``apply``):
        InputError: the stage has no audio track, the latent is not ``(B, C, T_ref, M)`` with ``C·M`` the track's
            token width and ``T_ref ≥ 1``, its batch fits neither 1 nor the stage's, or the track already has
            reference tokens that are not its last tokens.
    """

    latent: torch.Tensor
    strength: float = 1.0

    def apply(self, state: StageState) -> StageState:
        """The state with the reference tokens appended to the audio track."""
        track = state.audio
        if track is None:
            raise InputError("Reference audio needs a stage with sound (generate_audio on / with_audio=True).")
        batch, total, width = track.latent.shape
        if self.latent.ndim != 4 or self.latent.shape[2] < 1 or self.latent.shape[1] * self.latent.shape[3] != width:
            raise InputError(f"A reference audio latent must be (B, C, T, M) with C·M = {width} and T ≥ 1; got "
                             f"{tuple(self.latent.shape)}. Encode the reference with the model's audio VAE.")
        if self.latent.shape[0] not in (1, batch):
            raise InputError(f"The reference audio latent has batch {self.latent.shape[0]}; use 1 or the "
                             f"stage's batch {batch}.")
        start, stop = track.reference
        if stop > start and stop != total:
            raise InputError("Reference audio tokens must be the last tokens of the audio track; apply "
                             "ReferenceAudio after the other audio conditioning.")
        tokens = audio_to_tokens(self.latent).to(device=track.latent.device, dtype=track.latent.dtype)
        tokens = tokens.expand(batch, -1, -1)
        m = tokens.shape[1]
        positions = reference_audio_positions(batch, m, tokens.device).to(track.positions.dtype)
        mask = torch.full((batch, m, 1), 1.0 - self.strength, dtype=track.mask.dtype, device=tokens.device)
        attention = track.attention
        if attention is not None:  # as ltx-core's update_attention_mask with no strength of its own: full weight
            attention = guide_attention_weights(attention, num_noisy=track.generated, num_existing=total, num_new=m,
                                                strength=1.0, batch=batch, device=tokens.device)
        audio = Track(torch.cat([track.latent, tokens], 1), torch.cat([track.clean, tokens.to(track.clean.dtype)], 1),
                      torch.cat([track.mask, mask], 1), torch.cat([track.positions, positions], 2), attention,
                      track.generated, (start if stop > start else total, total + m), track.extended_keyframes(m))
        return state.with_audio(audio)
