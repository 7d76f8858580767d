"""Small pieces of the video VAE: patchify (space-to-depth of pixels), pixel norm, per-channel latent statistics,
and the causal 3-D convolution every layer is built from."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from .config import NormLayer, PaddingMode


def patchify(video: torch.Tensor, patch: int) -> torch.Tensor:
    """``(B, C, F, H, W)`` → ``(B, C·p², F, H/p, W/p)``. Channel order is ``(c, column-in-patch, row-in-patch)``
    (the *width* offset varies slower than the height offset, as in ``ltx_core.model.video_vae.ops.patchify``)."""
    if patch == 1:
        return video
    return rearrange(video, "b c f (h q) (w r) -> b (c r q) f h w", q=patch, r=patch)


def unpatchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, C·p², F, h, w)`` → ``(B, C, F, h·p, w·p)``.

    Mirrors ``ltx_core.model.video_vae.ops.unpatchify``.
    """
    if patch == 1:
        return x
    return rearrange(x, "b (c r q) f h w -> b c f (h q) (w r)", q=patch, r=patch)


class PixelNorm(nn.Module):
    """RMS over channels at every voxel: ``x / sqrt(mean_c(x²) + eps)`` (no weights).

    Mirrors ``ltx_core.model.common.normalization.PixelNorm``.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, …)`` → same shape, normalised over ``C``."""
        return x / torch.sqrt(torch.mean(x * x, dim=1, keepdim=True) + self.eps)


def make_norm(kind: NormLayer, channels: int, eps: float = 1e-6) -> nn.Module:
    """Pixel norm (released models) or 32-group GroupNorm (``norm_layer: group_norm``).

    Mirrors ``ltx_core.model.common.normalization.build_normalization_layer``.
    """
    return PixelNorm() if kind is NormLayer.PIXEL_NORM else nn.GroupNorm(32, channels, eps=eps)


class PerChannelStatistics(nn.Module):
    """Dataset statistics of the latent means. Buffers (checkpoint names) ``mean-of-means`` and ``std-of-means``,
    ``(C,)`` each. The diffusion model works on normalised latents ``(z − mean) / std``.

    Mirrors ``ltx_core.model.video_vae.ops.PerChannelStatistics``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("std-of-means", torch.ones(channels))
        self.register_buffer("mean-of-means", torch.zeros(channels))

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (self.get_buffer("mean-of-means").view(shape).to(x), self.get_buffer("std-of-means").view(shape).to(x))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(z − mean) / std`` over channel axis 1 of ``(B, C, …)``; same shape."""
        mean, std = self._stats(x)
        return (x - mean) / std

    def un_normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``x · std + mean`` over channel axis 1 of ``(B, C, …)``; same shape."""
        mean, std = self._stats(x)
        return x * std + mean


class CausalConv3d(nn.Module):
    """3×3×3 convolution padded spatially by ``padding`` (inside ``nn.Conv3d``) and in time by repeating edge frames:
    two copies of the first frame when causal, one of the first and one of the last frame otherwise, so the frame
    count is kept (before the stride). Key: ``conv.{weight,bias}``.

    Mirrors ``ltx_core.model.video_vae.convolution.CausalConv3d`` (diffusers:
    ``diffusers.models.autoencoders.autoencoder_kl_ltx2.LTX2VideoCausalConv3d``).
    """

    def __init__(self, in_channels: int, out_channels: int, padding: PaddingMode,
                 stride: tuple[int, int, int] = (1, 1, 1), kernel: int = 3) -> None:
        super().__init__()
        self.time_kernel = kernel
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=(0, kernel // 2, kernel // 2),
                              padding_mode=padding.value)

    def forward(self, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
        """``(B, C_in, F, H, W)`` → ``(B, C_out, ⌊(F − 1)/st⌋ + 1, ⌈H/sh⌉, ⌈W/sw⌉)`` for stride ``(st, sh, sw)``."""
        if self.time_kernel > 1:
            k = self.time_kernel - 1
            if causal:
                x = torch.cat((x[:, :, :1].expand(-1, -1, k, -1, -1), x), dim=2)
            else:
                first = x[:, :, :1].expand(-1, -1, k // 2, -1, -1)
                last = x[:, :, -1:].expand(-1, -1, k // 2, -1, -1)
                x = torch.cat((first, x, last), dim=2)
        return self.conv(x)
