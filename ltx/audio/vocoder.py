"""Mel → waveform generators: HiFi-GAN (LTX-2, ``resblock "1"``, 24 kHz) and BigVGAN-v2 (LTX-2.3 main generator and
BWE generator, ``resblock "AMP1"``). Input log-mel ``(B, 2, T, 64)``, output ``(B, 2, T · prod(upsample_rates))``.

Names are the official ones after ``vocoder.`` is stripped (``conv_pre``, ``ups.N``, ``resblocks.N``, ``conv_post``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .bigvgan import Activation1d, AMPBlock1, SnakeBeta
from .config import VocoderConfig

LRELU_SLOPE = 0.1  # inside the HiFi-GAN blocks; the final activation is nn.LeakyReLU() (slope 0.01) as released
MEL_CHANNELS = 128  # conv_pre input: 2 stereo channels × 64 mel bins, as in every released checkpoint


class ResBlock1(nn.Module):
    """HiFi-GAN residual block: three (leaky ReLU → dilated conv → leaky ReLU → conv) branches in sequence.

    Mirrors ``ltx_core.model.audio_vae.resnet.ResBlock1``.
    """

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding="same") for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, padding="same") for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, channels, T)`` → same shape."""
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


def mel_to_channels(mel: torch.Tensor) -> torch.Tensor:
    """``(B, 2, T, M)`` → ``(B, 2·M, T)`` (left channel's bins first), the input layout of
    ``ltx_core.model.audio_vae.vocoder.Vocoder.forward``.

    Raises:
        InputError: ``mel`` is not a stereo ``(B, 2, T, M)`` spectrogram.
    """
    if mel.ndim != 4 or mel.shape[1] != 2:
        raise InputError(f"The vocoder expects a stereo log-mel spectrogram (B, 2, T, mel_bins), "
                         f"got {tuple(mel.shape)}.")
    b, s, t, m = mel.shape
    return mel.transpose(2, 3).reshape(b, s * m, t)


class Vocoder(nn.Module):
    """Generator: ``conv_pre`` → per stage (act → transposed-conv upsample → mean of the stage's residual blocks) →
    final activation → ``conv_post`` → tanh / clamp(−1, 1) (unless ``apply_final_activation`` is off).

    Mirrors ``ltx_core.model.audio_vae.vocoder.Vocoder`` (diffusers: ``diffusers.pipelines.ltx2.vocoder.LTX2Vocoder``).
    """

    def __init__(self, cfg: VocoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.output_sampling_rate = cfg.output_sampling_rate
        ch0 = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(MEL_CHANNELS, ch0, 7, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(ch0 // 2**i, ch0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=True)))
        block = AMPBlock1 if cfg.is_amp else ResBlock1
        self.resblocks = nn.ModuleList(
            block(ch0 // 2 ** (i + 1), k, tuple(d))
            for i in range(len(cfg.upsample_rates))
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes, strict=True))
        final = ch0 // 2 ** len(cfg.upsample_rates)
        self.act_post = Activation1d(SnakeBeta(final)) if cfg.is_amp else nn.LeakyReLU()
        self.conv_post = nn.Conv1d(final, 2, 7, padding=3, bias=cfg.use_bias_at_final)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, 2, T, 64)`` log-mel (100 frames per second) → ``(B, 2, T · hop)`` waveform at
        ``output_sampling_rate`` Hz.

        Raises:
            InputError: ``mel`` is not a stereo ``(B, 2, T, mel_bins)`` spectrogram.
        """
        x = self.conv_pre(mel_to_channels(mel))
        n = len(self.cfg.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            if not self.cfg.is_amp:
                x = F.leaky_relu(x, LRELU_SLOPE)
            x = up(x)
            x = torch.stack([self.resblocks[j](x) for j in range(i * n, (i + 1) * n)]).mean(dim=0)
        x = self.conv_post(self.act_post(x))
        if self.cfg.apply_final_activation:
            x = torch.tanh(x) if self.cfg.use_tanh_at_final else x.clamp(-1, 1)
        return x
