"""Waveform ↔ audio latent: mel front end + audio VAE encoder / decoder + vocoder in one object, :class:`AudioVAE`.

The same object as ComfyUI's ``AudioVAE`` (what its LTXV Audio VAE Loader returns and what RS LTXV Audio VAE Loader's
``audio_vae`` output carries); in ltx-core the pieces are ``AudioProcessor`` (mel), ``AudioEncoder`` /
``AudioDecoder`` and ``Vocoder``, joined by ``encode_audio`` / ``decode_audio``. The networks themselves are
:mod:`.vae` and :mod:`.vocoder` / :mod:`.bwe`.

``encode``: waveform ``(B, C, N)`` at any rate → stereo 16 kHz → log-mel ``(B, 2, T, 64)`` → latent ``(B, 8, T', 16)``
(25 latent frames per second). ``decode``: latent → log-mel ``(B, 2, 4·T' − 3, 64)`` → waveform ``(B, 2, N')`` at
the vocoder's rate (24 kHz for LTX-2, 48 kHz for LTX-2.3).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CheckpointError
from .bwe import VocoderWithBWE
from .config import AudioVAEConfig
from .mel import LogMelSpectrogram
from .vae import AudioDecoder, AudioEncoder
from .vocoder import Vocoder
from .waveform import prepare_waveform


class AudioVAE(nn.Module):
    """The audio VAE as :class:`~..pipeline.protocols.AudioVAEProtocol`: holds any of ``encoder`` / ``decoder`` /
    ``vocoder`` (None where a file lacks it).

    Mirrors ``ltx_core.model.audio_vae.audio_vae.encode_audio`` / ``decode_audio`` with their ``AudioProcessor``
    (diffusers: ``diffusers.models.autoencoders.autoencoder_kl_ltx2_audio.AutoencoderKLLTX2Audio`` plus
    ``diffusers.pipelines.ltx2.vocoder.LTX2Vocoder``).
    """

    def __init__(self, encoder: AudioEncoder | None, decoder: AudioDecoder | None,
                 vocoder: Vocoder | VocoderWithBWE | None) -> None:
        super().__init__()
        self.encoder, self.decoder, self.vocoder = encoder, decoder, vocoder
        part = encoder if encoder is not None else decoder
        cfg = part.cfg if part is not None else AudioVAEConfig()
        self.mel = LogMelSpectrogram(cfg.sample_rate, cfg.n_fft, cfg.mel_hop_length, cfg.mel_bins or 64)

    @property
    def sample_rate(self) -> int:
        """Rate in Hz of the input the encoder sees (16 kHz)."""
        return self.mel.sample_rate

    @property
    def output_sampling_rate(self) -> int:
        """Rate in Hz of decoded waveforms (the vocoder's: 24 kHz LTX-2, 48 kHz LTX-2.3).

        Raises:
            CheckpointError: there is no vocoder.
        """
        if self.vocoder is None:
            raise CheckpointError("This audio VAE has no vocoder weights (vocoder.* tensors).")
        return self.vocoder.output_sampling_rate

    def waveform_to_mel(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """``(B, C, N)`` samples at ``sample_rate`` Hz → log-mel ``(B, 2, T, 64)`` float32 at 100 frames per second.

        Mirrors ``ltx_core.model.audio_vae.ops.AudioProcessor.waveform_to_mel``.

        Raises:
            InputError: not a float ``(B, C, N)`` waveform, a rate that is not a positive integer, or too short.
        """
        return self.mel(prepare_waveform(waveform, sample_rate, self.sample_rate).to(self.mel.filterbank.device))

    def encode(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Waveform ``(B, C, N)`` at ``sample_rate`` Hz → normalised latent ``(B, 8, T', 16)`` (25 latent frames per
        second). Mirrors ``ltx_core.model.audio_vae.audio_vae.encode_audio``.

        Raises:
            CheckpointError: there is no encoder.
            InputError: as :meth:`waveform_to_mel`.
        """
        if self.encoder is None:
            raise CheckpointError("This audio VAE has no encoder weights; load a file with audio_vae.encoder.* "
                                  "tensors.")
        mel = self.waveform_to_mel(waveform, sample_rate)
        param = next(self.encoder.parameters())
        return self.encoder(mel.to(device=param.device, dtype=param.dtype))

    def decode(self, latent: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Latent ``(B, 8, T', 16)`` → (waveform ``(B, 2, N')`` float32, sample rate in Hz).

        Mirrors ``ltx_core.model.audio_vae.audio_vae.decode_audio``.

        Raises:
            CheckpointError: the decoder or the vocoder is missing.
            InputError: ``latent`` is not ``(B, z_channels, T', F')``.
        """
        if self.decoder is None or self.vocoder is None:
            raise CheckpointError("Decoding audio needs the audio VAE decoder and the vocoder weights "
                               "(audio_vae.decoder.* and vocoder.* tensors).")
        param = next(self.decoder.parameters())
        mel = self.decoder(latent.to(device=param.device, dtype=param.dtype))
        vparam = next(self.vocoder.parameters())
        wav = self.vocoder(mel.to(device=vparam.device, dtype=vparam.dtype))
        return wav.float(), self.vocoder.output_sampling_rate
