"""Channel handling of waveforms ``(B, channels, samples)`` for the stereo audio VAE."""

from __future__ import annotations

import torch

from ..errors import InputError
from .resample import resample


def to_stereo(waveform: torch.Tensor) -> torch.Tensor:
    """``(B, C, N)`` → ``(B, 2, N)``: mono is duplicated to both channels (as ComfyUI's LTXV audio encode node does),
    stereo is kept, more channels keep the first two (front left / front right in the usual layouts).

    ltx-core expects stereo already; ComfyUI's ``LTXVAudioVAEEncode`` does the same duplication.

    Raises:
        InputError: not a ``(B, C, N)`` tensor with ``C ≥ 1``.
    """
    if waveform.ndim != 3 or waveform.shape[1] == 0:
        raise InputError(f"Expected a waveform (B, channels, samples), got shape {tuple(waveform.shape)}. "
                         "ComfyUI AUDIO waveforms are (B, C, T).")
    if waveform.shape[1] == 1:
        return waveform.expand(-1, 2, -1)
    return waveform[:, :2]


def prepare_waveform(waveform: torch.Tensor, sample_rate: int, target_rate: int) -> torch.Tensor:
    """Stereo float32 ``(B, 2, N')`` at ``target_rate`` Hz from any ``(B, C, N)`` waveform at ``sample_rate`` Hz.

    Mirrors ``ltx_core.model.audio_vae.ops.AudioProcessor.resample_audio`` plus :func:`to_stereo`.

    Raises:
        InputError: not a floating-point ``(B, C, N)`` waveform, or a rate that is not a positive integer.
    """
    if not waveform.is_floating_point():
        raise InputError(f"Expected a floating-point waveform in [-1, 1], got dtype {waveform.dtype}.")
    return resample(to_stereo(waveform).float(), sample_rate, target_rate)
