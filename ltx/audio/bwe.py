"""LTX-2.3 vocoder with bandwidth extension: mel → 16 kHz (BigVGAN-v2) → causal log-mel of that waveform →
BWE generator residual + 3× Hann-sinc resampled skip → clamp(−1, 1) → 48 kHz. Signals ``(B, 2, samples)``.

Official names after ``vocoder.`` is stripped: ``vocoder.*`` (main generator), ``bwe_generator.*``,
``mel_stft.mel_basis`` ``(n_mels, n_fft/2+1)``, ``mel_stft.stft_fn.{forward,inverse}_basis`` ``(n_fft+2, 1, n_fft)``
(DFT rows × window, real parts then imaginary parts; loaded from the checkpoint, not recomputed).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import BWEVocoderConfig
from .vocoder import Vocoder


class CausalSTFT(nn.Module):
    """Magnitude STFT as a strided conv with the stored bases; left-only padding of ``n_fft − hop`` samples, so a
    frame never sees later samples. ``(N, samples)`` → ``(N, n_fft/2+1, frames)``.

    Mirrors ``ltx_core.model.audio_vae.vocoder._STFTFn`` (diffusers: ``diffusers.pipelines.ltx2.vocoder.CausalSTFT``).
    """

    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        bins = n_fft // 2 + 1
        self.register_buffer("forward_basis", torch.zeros(2 * bins, 1, n_fft))
        self.register_buffer("inverse_basis", torch.zeros(2 * bins, 1, n_fft))  # stored in files; unused here

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Waveforms ``(N, samples)`` → magnitudes ``(N, n_fft/2+1, samples // hop_length)``."""
        y = F.pad(y[:, None], (max(0, self.n_fft - self.hop_length), 0))
        spec = F.conv1d(y, self.forward_basis, stride=self.hop_length)
        real, imag = spec.chunk(2, dim=1)
        return torch.sqrt(real**2 + imag**2)


class MelSTFT(nn.Module):
    """``log(clamp(mel_basis @ |STFT|, 1e-5))``: ``(N, samples)`` → ``(N, n_mels, frames)``.

    Mirrors ``ltx_core.model.audio_vae.vocoder.MelSTFT`` (diffusers: ``diffusers.pipelines.ltx2.vocoder.MelSTFT``).
    """

    def __init__(self, n_fft: int, hop_length: int, n_mels: int) -> None:
        super().__init__()
        self.stft_fn = CausalSTFT(n_fft, hop_length)
        self.register_buffer("mel_basis", torch.zeros(n_mels, n_fft // 2 + 1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Waveforms ``(N, samples)`` → log-mel ``(N, n_mels, frames)`` (the log-mel of ltx-core's
        ``MelSTFT.mel_spectrogram``)."""
        magnitude = self.stft_fn(y)
        return torch.log(torch.clamp(torch.matmul(self.mel_basis.to(magnitude.dtype), magnitude), min=1e-5))


def hann_sinc_taps(ratio: int, lowpass_width: int = 6, rolloff: float = 0.99) -> torch.Tensor:
    """Taps ``(1, 1, 2·width·ratio + 1)`` of an integer-ratio interpolator: sinc with cutoff ``rolloff`` × the input
    Nyquist under a Hann (cos²) window spanning ±``lowpass_width`` zero crossings (the torchaudio-style kernel).

    Mirrors the ``window_type="hann"`` filter of ``ltx_core.model.audio_vae.vocoder.UpSample1d``.
    """
    width = math.ceil(lowpass_width / rolloff)
    k = 2 * width * ratio + 1
    t = (torch.arange(k, dtype=torch.float64) / ratio - width) * rolloff
    window = torch.cos(t.clamp(-lowpass_width, lowpass_width) * math.pi / lowpass_width / 2) ** 2
    return (torch.sinc(t) * window * rolloff / ratio).float().view(1, 1, k)


class HannUpsampler(nn.Module):
    """Integer-ratio upsampler used for the BWE skip path: ``(B, C, T)`` → ``(B, C, ratio·T)``. The taps are not
    stored in checkpoints; they are computed on the CPU even when the model is built on the meta device.

    Mirrors ``ltx_core.model.audio_vae.vocoder.UpSample1d`` with ``window_type="hann"``.
    """

    def __init__(self, ratio: int) -> None:
        super().__init__()
        self.ratio = ratio
        with torch.device("cpu"):
            taps = hann_sinc_taps(ratio)
        self.width = (taps.shape[-1] - 1) // (2 * ratio)
        self.crop_left, self.crop_right = taps.shape[-1] - 1, taps.shape[-1] - ratio
        self.register_buffer("filter", taps, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` → ``(B, C, ratio·T)``."""
        c = x.shape[1]
        x = F.pad(x, (self.width, self.width), mode="replicate")
        taps = self.filter.to(device=x.device, dtype=x.dtype).expand(c, -1, -1)
        x = self.ratio * F.conv_transpose1d(x, taps, stride=self.ratio, groups=c)
        return x[..., self.crop_left:x.shape[-1] - self.crop_right]


class VocoderWithBWE(nn.Module):
    """``(B, 2, T, 64)`` log-mel → ``(B, 2, T · hop_main · out_rate / in_rate)`` waveform at the output rate.

    Mirrors ``ltx_core.model.audio_vae.vocoder.VocoderWithBWE`` (diffusers:
    ``diffusers.pipelines.ltx2.vocoder.LTX2VocoderWithBWE``).
    """

    def __init__(self, cfg: BWEVocoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.output_sampling_rate = cfg.output_sampling_rate
        self.vocoder = Vocoder(cfg.vocoder)
        self.bwe_generator = Vocoder(cfg.bwe)
        self.mel_stft = MelSTFT(cfg.n_fft, cfg.hop_length, cfg.num_mels)
        self.resampler = HannUpsampler(cfg.output_sampling_rate // cfg.input_sampling_rate)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``(B, 2, T, 64)`` at 100 frames per second → waveform ``(B, 2, N)`` in [-1, 1] at
        ``output_sampling_rate`` Hz (48 kHz).

        Raises:
            InputError: ``mel`` is not ``(B, 2, T, mel_bins)``.
        """
        x = self.vocoder(mel)  # (B, 2, L) at input_sampling_rate
        b, c, length = x.shape
        out_length = length * self.cfg.output_sampling_rate // self.cfg.input_sampling_rate
        x = F.pad(x, (0, -length % self.cfg.hop_length))  # whole STFT frames
        bwe_mel = self.mel_stft(x.reshape(b * c, -1))  # (B·2, n_mels, frames)
        bwe_mel = bwe_mel.reshape(b, c, *bwe_mel.shape[1:]).transpose(2, 3)  # (B, 2, frames, n_mels)
        residual = self.bwe_generator(bwe_mel)
        skip = self.resampler(x)
        return torch.clamp(residual + skip, -1, 1)[..., :out_length]
