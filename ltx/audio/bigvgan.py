"""BigVGAN-v2 pieces of the LTX-2.3 vocoder: SnakeBeta, kaiser-windowed sinc filters, anti-aliased activations
(2× up → SnakeBeta → 2× down) and the AMP residual block. All signals are ``(B, C, samples)``.

The filter taps are persistent buffers (``…upsample.filter``, ``…downsample.lowpass.filter``) because the official
checkpoints store them; the constructors compute the same values so a model built without a file works too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Low-pass FIR taps ``(1, 1, K)``: sinc at ``cutoff`` (cycles/sample) under a Kaiser window whose β follows the
    Kaiser design rule for a transition band of ``half_width``; normalised to unit DC gain. Even K is centred
    between taps.

    Mirrors ``ltx_core.model.audio_vae.vocoder.kaiser_sinc_filter1d`` (diffusers:
    ``diffusers.pipelines.ltx2.vocoder.kaiser_sinc_filter1d``).
    """
    half = kernel_size // 2
    attenuation = 2.285 * (half - 1) * math.pi * (4 * half_width) + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, periodic=False, beta=beta)
    if kernel_size % 2 == 0:
        t = torch.arange(-half, half) + 0.5
    else:
        t = torch.arange(kernel_size) - half
    if cutoff == 0:
        return torch.zeros(1, 1, kernel_size)
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * t)
    return (taps / taps.sum()).view(1, 1, kernel_size)


class UpSample1d(nn.Module):
    """Integer-ratio upsampling: zero-stuffing + kaiser-sinc low-pass (transposed depthwise conv), edges replicated.

    Mirrors ``ltx_core.model.audio_vae.vocoder.UpSample1d`` (kaiser window).
    """

    def __init__(self, ratio: int = 2, kernel_size: int | None = None) -> None:
        super().__init__()
        self.ratio = ratio
        self.kernel_size = kernel_size or int(6 * ratio // 2) * 2
        self.pad = self.kernel_size // ratio - 1
        self.crop_left = self.pad * ratio + (self.kernel_size - ratio) // 2
        self.crop_right = self.pad * ratio + (self.kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, self.kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` → ``(B, C, ratio·T)``."""
        c = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        taps = self.filter.to(x).expand(c, -1, -1)
        x = self.ratio * F.conv_transpose1d(x, taps, stride=self.ratio, groups=c)
        return x[..., self.crop_left:x.shape[-1] - self.crop_right]


class LowPassFilter1d(nn.Module):
    """Depthwise kaiser-sinc low-pass with optional stride; replicate padding keeps ``ceil(T / stride)`` samples.

    ``cutoff`` / ``half_width`` in cycles per sample. Mirrors ``ltx_core.model.audio_vae.vocoder.LowPassFilter1d``.
    """

    def __init__(self, cutoff: float, half_width: float, stride: int, kernel_size: int) -> None:
        super().__init__()
        self.stride = stride
        self.pad_left = kernel_size // 2 - int(kernel_size % 2 == 0)
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter(cutoff, half_width, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` → ``(B, C, ceil(T / stride))``."""
        c = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.to(x).expand(c, -1, -1), stride=self.stride, groups=c)


class DownSample1d(nn.Module):
    """Integer-ratio downsampling: kaiser-sinc low-pass at ``0.5 / ratio`` with stride ``ratio``.

    Mirrors ``ltx_core.model.audio_vae.vocoder.DownSample1d``.
    """

    def __init__(self, ratio: int = 2, kernel_size: int | None = None) -> None:
        super().__init__()
        k = kernel_size or int(6 * ratio // 2) * 2
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, ratio, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` → ``(B, C, ceil(T / ratio))``."""
        return self.lowpass(x)


class SnakeBeta(nn.Module):
    """``x + sin²(x·e^α) / (e^β + 1e-9)`` per channel; ``alpha``/``beta`` are stored as logs.

    Mirrors ``ltx_core.model.audio_vae.vocoder.SnakeBeta`` (``alpha_logscale=True``).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` → same shape."""
        alpha = torch.exp(self.alpha)[None, :, None]
        beta = torch.exp(self.beta)[None, :, None]
        return x + (1.0 / (beta + 1e-9)) * torch.sin(x * alpha).pow(2)


class Activation1d(nn.Module):
    """Anti-aliased activation: 2× upsample → ``act`` → 2× downsample (12-tap kaiser-sinc filters).

    Mirrors ``ltx_core.model.audio_vae.vocoder.Activation1d``.
    """

    def __init__(self, act: nn.Module, ratio: int = 2, kernel_size: int = 12) -> None:
        super().__init__()
        self.act = act
        self.upsample = UpSample1d(ratio, kernel_size)
        self.downsample = DownSample1d(ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` → ``(B, C, T)``."""
        return self.downsample(self.act(self.upsample(x)))


def _padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


class AMPBlock1(nn.Module):
    """Three (act → dilated conv → act → conv) residual branches applied one after another.

    Mirrors ``ltx_core.model.audio_vae.vocoder.AMPBlock1`` (diffusers: ``diffusers.pipelines.ltx2.vocoder.ResBlock``).
    """

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d)) for d in dilations)
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=_padding(kernel_size, 1)) for _ in dilations)
        self.acts1 = nn.ModuleList(Activation1d(SnakeBeta(channels)) for _ in dilations)
        self.acts2 = nn.ModuleList(Activation1d(SnakeBeta(channels)) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, channels, T)`` → same shape."""
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, self.acts1, self.acts2, strict=True):
            x = x + c2(a2(c1(a1(x))))
        return x
