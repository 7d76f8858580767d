"""Core's audio VAE object (LTXV Audio VAE Loader) as the library's :class:`~rs_ltxv.ltx.pipeline.protocols.
AudioVAEProtocol`, through core's own encode / decode.

Used when the checkpoint's audio config is not at hand: core's ``AudioVAE`` drops the ``audio_vae`` / ``vocoder``
metadata sections it was built from, and the vocoder's layout (upsample strides, kernel sizes) cannot be read back
from tensor shapes alone. Weights stay core's (no copy); the mel front end is core's (it needs torchaudio, which
ComfyUI itself imports at start-up); our resampler brings input audio to the VAE's rate first.
"""

from __future__ import annotations

from typing import Any

import torch

from ..ltx.audio.resample import resample


class CoreAudioVAE:
    """``encode(waveform (B, C, S), rate) → latent (B, 8, T, 16)``; ``decode(latent) → (waveform (B, 2, S), rate)``
    with a core ``comfy.sd.VAE`` holding the LTX audio VAE + vocoder."""

    def __init__(self, vae: Any) -> None:
        self.vae = vae
        self.input_rate = int(getattr(vae, "audio_sample_rate", 16000))
        self.output_rate = int(getattr(vae.first_stage_model, "output_sample_rate", 24000))

    def encode(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Waveform ``(B, C, S)`` at ``sample_rate`` Hz → latent ``(B, 8, T, 16)`` through core's ``VAE.encode``
        (resampled on the CPU to :attr:`input_rate` first)."""
        wave = waveform.float().cpu()
        if int(sample_rate) != self.input_rate:
            wave = resample(wave, int(sample_rate), self.input_rate)
        return self.vae.encode(wave.movedim(1, -1))

    def decode(self, latent: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Latent ``(B, 8, T, 16)`` → (waveform ``(B, 2, S)`` on the latent's device, :attr:`output_rate` in Hz)
        through core's ``VAE.decode``."""
        wave = self.vae.decode(latent).movedim(-1, 1)
        return wave.to(latent.device), self.output_rate
