"""Log-mel front end of the audio VAE, without torchaudio: ``torch.stft`` + a slaney mel filterbank built here.

Settings of the released models (from the ``audio_vae`` config): 16 kHz, n_fft = window = 1024 (Hann, periodic),
hop 160 (100 frames/s), centred frames with reflect padding, magnitude (power 1), 64 mels on the slaney scale from
0 to 8000 Hz with slaney (area) normalisation, ``log(clamp(x, 1e-5))``. Layout ``(B, C, T, n_mels)`` with
``T = 1 + samples // hop``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import InputError

# Slaney / Auditory Toolbox mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15 mel
_LOG_STEP = math.log(6.4) / 27.0


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney mel of ``hz`` (any shape, float64 recommended); same shape out.

    Mirrors torchaudio's ``_hz_to_mel(…, mel_scale="slaney")`` behind ``torchaudio.functional.melscale_fbanks``.
    """
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + torch.log(torch.clamp(hz, min=_MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return torch.where(hz >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`: slaney mel (any shape) → Hz, same shape."""
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * torch.exp(_LOG_STEP * (mel - _MIN_LOG_MEL))
    return torch.where(mel >= _MIN_LOG_MEL, log, linear)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0,
                   f_max: float | None = None) -> torch.Tensor:
    """Triangular slaney filters ``(n_fft // 2 + 1, n_mels)`` (float64): centres equally spaced in slaney mel between
    ``f_min`` and ``f_max`` (Hz; ``f_max`` defaults to ``sample_rate / 2``), each triangle scaled by
    ``2 / (right edge − left edge)`` (unit area in Hz).

    Mirrors ``torchaudio.functional.melscale_fbanks(…, norm="slaney", mel_scale="slaney")``, which ltx-core's
    ``ltx_core.model.audio_vae.ops.AudioProcessor`` uses through ``torchaudio.transforms.MelSpectrogram``.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    freqs = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1, dtype=torch.float64)
    edges_mel = torch.linspace(float(hz_to_mel(torch.tensor(f_min, dtype=torch.float64))),
                               float(hz_to_mel(torch.tensor(f_max, dtype=torch.float64))), n_mels + 2,
                               dtype=torch.float64)
    edges = mel_to_hz(edges_mel)  # (n_mels + 2,)
    widths = edges[1:] - edges[:-1]
    offsets = edges[None, :] - freqs[:, None]  # (n_freqs, n_mels + 2)
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    fb = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return fb * (2.0 / (edges[2:] - edges[:-2]))[None, :]


#: the mel front end of the released audio VAEs (LTX-2 / LTX-2.3: 16 kHz, ``n_fft`` 1024)
MEL_SAMPLE_RATE = 16000
MEL_N_FFT = 1024


def min_audio_seconds(sample_rate: int = MEL_SAMPLE_RATE, n_fft: int = MEL_N_FFT) -> float:
    """The shortest waveform the mel front end takes, in seconds: more than ``n_fft // 2`` samples at
    ``sample_rate`` (what :class:`LogMelSpectrogram` refuses below; 513 samples at 16 kHz ≈ 32 ms). The request
    checks a waveform against it at its own rate, before any model loads."""
    return (n_fft // 2 + 1) / sample_rate


class LogMelSpectrogram(nn.Module):
    """Waveform ``(B, C, samples)`` at ``sample_rate`` → log-mel ``(B, C, 1 + samples // hop, n_mels)`` (float32).

    ``sample_rate`` / ``f_min`` / ``f_max`` in Hz, ``n_fft`` / ``hop_length`` in samples. Mirrors
    ``ltx_core.model.audio_vae.ops.AudioProcessor.waveform_to_mel`` without its resampling.
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 160, n_mels: int = 64,
                 f_min: float = 0.0, f_max: float | None = None) -> None:
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = sample_rate, n_fft, hop_length, n_mels
        with torch.device("cpu"):  # also when a model is built on the meta device
            fb = mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max).float()
        self.register_buffer("filterbank", fb, persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, C, samples)`` at ``sample_rate`` Hz → log-mel ``(B, C, 1 + samples // hop_length, n_mels)``.

        Raises:
            InputError: not a ``(B, C, samples)`` tensor, or ``samples ≤ n_fft / 2``.
        """
        if waveform.ndim != 3:
            raise InputError(f"Expected a waveform (B, channels, samples), got shape {tuple(waveform.shape)}.")
        b, c, n = waveform.shape
        if n <= self.n_fft // 2:
            raise InputError(f"The audio is too short: {n} samples at {self.sample_rate} Hz; the mel front end needs "
                             f"more than {self.n_fft // 2} ({1000 * (self.n_fft // 2 + 1) / self.sample_rate:.0f} ms).")
        x = waveform.reshape(b * c, n).float()
        window = torch.hann_window(self.n_fft, periodic=True, device=x.device, dtype=x.dtype)
        spec = torch.stft(x, self.n_fft, self.hop_length, self.n_fft, window, center=True, pad_mode="reflect",
                          normalized=False, onesided=True, return_complex=True).abs()  # (B·C, n_freqs, T)
        mel = torch.matmul(spec.transpose(1, 2), self.filterbank.to(x.device))  # (B·C, T, n_mels)
        return torch.log(torch.clamp(mel, min=1e-5)).reshape(b, c, mel.shape[1], self.n_mels)
