"""ID-LoRA voice identity: the request's reference speech encoded once by the audio VAE and given to every stage as
:class:`~.conditioning.ReferenceAudio` tokens; the stages' denoisers add identity guidance
(:class:`~.denoiser.Denoiser` ``identity_guidance``).

The whole reference is used, at any length: ComfyUI's ``LTXVReferenceAudio`` and ``ltx_pipelines.dubit`` encode all
of it. The LoRA was trained on about 5 s of speech; much shorter or longer clips may transfer the voice less well, and
every reference second adds 25 audio tokens to each pass.
"""

from __future__ import annotations

import torch

from .common import need
from .conditioning import Conditioning, ReferenceAudio
from .protocols import ModelParts
from .request import Request


def reference_audio_latent(parts: ModelParts, req: Request) -> torch.Tensor | None:
    """``req.reference_audio`` ``(C, S)`` at ``req.reference_audio_sample_rate`` Hz encoded by ``parts.audio_vae``
    (which resamples it) to a latent ``(1, 8, T_ref, 16)``, 25 latent frames per second; None without reference
    audio. Mirrors ``LTXVReferenceAudio.execute`` (resample, ``audio_vae.encode``) and
    ``DubItPipeline._encode_reference_audio_vae_latent``.

    Raises:
        InputError: ``parts.audio_vae`` is None, or the waveform is unusable.
        CheckpointError: the audio VAE has no encoder weights.
    """
    if req.reference_audio is None:
        return None
    audio_vae = need(parts.audio_vae, "audio_vae", "Reference audio (ID-LoRA)")
    return audio_vae.encode(req.reference_audio.unsqueeze(0), int(req.reference_audio_sample_rate))


def reference_audio_conditions(latent: torch.Tensor | None, dtype: torch.dtype,
                               device: torch.device | str) -> list[Conditioning]:
    """``[ReferenceAudio(latent)]`` in the stage's dtype and device (strength 1: kept exactly, as
    ``DubItPipeline``), or ``[]`` without a latent."""
    if latent is None:
        return []
    return [ReferenceAudio(latent.to(device=device, dtype=dtype))]
