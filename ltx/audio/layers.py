"""Building blocks of the audio VAE: causal 2-D convs over ``(B, C, time, mel)`` maps, norms, ResNet / attention
blocks, 2× down- and upsampling. Padding is table-driven by :class:`CausalityAxis`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import CausalityAxis, NormType


def _conv_padding(axis: CausalityAxis, pad_h: int, pad_w: int) -> tuple[int, int, int, int]:
    """``F.pad`` order (left, right, top, bottom) = (mel start, mel end, time start, time end)."""
    sym_w, sym_h = (pad_w // 2, pad_w - pad_w // 2), (pad_h // 2, pad_h - pad_h // 2)
    table = {
        CausalityAxis.NONE: (*sym_w, *sym_h),
        CausalityAxis.WIDTH: (pad_w, 0, *sym_h),
        CausalityAxis.WIDTH_COMPATIBILITY: (pad_w, 0, *sym_h),
        CausalityAxis.HEIGHT: (*sym_w, pad_h, 0),
    }
    return table[axis]


# Padding before the stride-2 3×3 downsampling conv, and which axis the upsampler trims one leading element from.
_DOWN_PAD = {
    CausalityAxis.NONE: (0, 1, 0, 1),
    CausalityAxis.WIDTH: (2, 0, 0, 1),
    CausalityAxis.HEIGHT: (0, 1, 2, 0),
    CausalityAxis.WIDTH_COMPATIBILITY: (1, 0, 0, 1),
}
_UP_TRIM_DIM = {CausalityAxis.HEIGHT: 2, CausalityAxis.WIDTH: 3}


class CausalConv2d(nn.Module):
    """Conv2d with padding applied by hand so outputs never see later time steps (``conv`` holds the weights).

    Mirrors ``ltx_core.model.audio_vae.causal_conv_2d.CausalConv2d`` (diffusers:
    ``diffusers.models.autoencoders.autoencoder_kl_ltx2_audio.LTX2AudioCausalConv2d``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, axis: CausalityAxis) -> None:
        super().__init__()
        self.padding = _conv_padding(axis, kernel_size - 1, kernel_size - 1)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, time, mel)`` → ``(B, C_out, time, mel)``."""
        return self.conv(F.pad(x, self.padding))


class PixelNorm(nn.Module):
    """RMS over channels at every location: ``x / sqrt(mean_c(x²) + eps)``.

    Mirrors ``ltx_core.model.common.normalization.PixelNorm``.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, time, mel)`` → same shape, normalised over ``C``."""
        return x / torch.sqrt(torch.mean(x * x, dim=1, keepdim=True) + self.eps)


def make_norm(channels: int, norm: NormType) -> nn.Module:
    """Pixel norm (released models) or 32-group GroupNorm, eps 1e-6.

    Mirrors ``ltx_core.model.common.normalization.build_normalization_layer``.
    """
    if norm is NormType.PIXEL:
        return PixelNorm(1e-6)
    return nn.GroupNorm(32, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """norm → SiLU → conv → norm → SiLU → conv, plus the input (through a 1×1 ``nin_shortcut`` when widths differ).

    Mirrors ``ltx_core.model.audio_vae.resnet.ResnetBlock``.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: NormType, axis: CausalityAxis) -> None:
        super().__init__()
        self.norm1 = make_norm(in_channels, norm)
        self.conv1 = CausalConv2d(in_channels, out_channels, 3, axis)
        self.norm2 = make_norm(out_channels, norm)
        self.conv2 = CausalConv2d(out_channels, out_channels, 3, axis)
        if in_channels != out_channels:
            self.nin_shortcut = CausalConv2d(in_channels, out_channels, 1, axis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, time, mel)`` → ``(B, C_out, time, mel)``."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        if hasattr(self, "nin_shortcut"):
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all (time, mel) positions with 1×1-conv projections (off in released models).

    Mirrors ``ltx_core.model.audio_vae.attention.AttnBlock``.
    """

    def __init__(self, channels: int, norm: NormType) -> None:
        super().__init__()
        self.norm = make_norm(channels, norm)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, time, mel)`` → same shape."""
        b, c, h, w = x.shape
        n = self.norm(x)
        q, k, v = (p(n).reshape(b, c, h * w).transpose(1, 2) for p in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj_out(out.transpose(1, 2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """2× in time and mel: stride-2 3×3 conv after causal zero padding (or 2×2 average pooling without conv).

    Mirrors ``ltx_core.model.audio_vae.downsample.Downsample``.
    """

    def __init__(self, channels: int, with_conv: bool, axis: CausalityAxis) -> None:
        super().__init__()
        self.pad = _DOWN_PAD[axis]
        if with_conv:
            self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, M)`` → ``(B, C, T/2, M/2)`` for even sizes; an odd size rounds up along the causal axis
        (``HEIGHT``: ``⌈T/2⌉``; ``WIDTH``: ``⌈M/2⌉``) and down elsewhere."""
        if not hasattr(self, "conv"):
            return F.avg_pool2d(x, 2, 2)
        return self.conv(F.pad(x, self.pad))


class Upsample(nn.Module):
    """2× nearest in time and mel, then a causal 3×3 conv; drops the first time step so ``T → 2T − 1`` (undoes the
    encoder's causal padding: the first two outputs would both depend only on the first input).

    Mirrors ``ltx_core.model.audio_vae.upsample.Upsample``.
    """

    def __init__(self, channels: int, with_conv: bool, axis: CausalityAxis) -> None:
        super().__init__()
        self.trim_dim = _UP_TRIM_DIM.get(axis) if with_conv else None
        if with_conv:
            self.conv = CausalConv2d(channels, channels, 3, axis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, M)`` → ``(B, C, 2T − 1, 2M)`` with ``HEIGHT`` causality (released models); ``WIDTH`` trims
        the mel axis instead (``2M − 1``), the other axes and conv-less upsampling trim nothing."""
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if not hasattr(self, "conv"):
            return x
        x = self.conv(x)
        if self.trim_dim is not None:
            x = x.narrow(self.trim_dim, 1, x.shape[self.trim_dim] - 1)
        return x


class MidBlock(nn.Module):
    """ResNet → (attention) → ResNet at the bottleneck.

    Mirrors ``ltx_core.model.audio_vae.audio_vae.build_mid_block`` / ``run_mid_block``.
    """

    def __init__(self, channels: int, norm: NormType, axis: CausalityAxis, attention: bool) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, norm, axis)
        self.attn_1 = AttnBlock(channels, norm) if attention else nn.Identity()
        self.block_2 = ResnetBlock(channels, channels, norm, axis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, time, mel)`` → same shape."""
        return self.block_2(self.attn_1(self.block_1(x)))
