"""Resolution changes of the video VAE: space-to-depth downsampling (encoder, residual by channel-group mean) and
depth-to-space upsampling (decoder). Strides are ``(time, height, width)``; a temporal stride of 2 keeps the
1 + 8k frame structure by duplicating the first frame (down) or dropping the first output frame (up)."""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from .config import PaddingMode
from .ops import CausalConv3d

_TO_DEPTH = "b c (d p1) (h p2) (w p3) -> b (c p1 p2 p3) d h w"
_TO_SPACE = "b (c p1 p2 p3) d h w -> b c (d p1) (h p2) (w p3)"


class SpaceToDepthDownsample(nn.Module):
    """``(B, C, F, H, W)`` → ``(B, C·m, F/st, H/sh, W/sw)``: a conv to ``C·m/prod(stride)`` channels folded into
    depth, plus the input folded into depth and averaged over groups of ``C·prod(stride)/(C·m)`` channels.
    Key: ``conv.conv.*``.

    Mirrors ``ltx_core.model.video_vae.sampling.SpaceToDepthDownsample`` (diffusers:
    ``diffusers.models.autoencoders.autoencoder_kl_ltx2.LTX2VideoDownsampler3d``).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int, int],
                 padding: PaddingMode) -> None:
        super().__init__()
        self.stride = stride
        self.group_size = in_channels * math.prod(stride) // out_channels
        self.conv = CausalConv3d(in_channels, out_channels // math.prod(stride), padding)

    def forward(self, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
        """``(B, C, F, H, W)`` → ``(B, C·m, (F + 1)/2 or F, H/sh, W/sw)`` (a temporal stride of 2 first repeats
        frame 0, so ``1 + 8k`` frames become ``1 + 4k``)."""
        p1, p2, p3 = self.stride
        if p1 == 2:
            x = torch.cat([x[:, :, :1], x], dim=2)
        skip = rearrange(x, _TO_DEPTH, p1=p1, p2=p2, p3=p3)
        skip = skip.unflatten(1, (-1, self.group_size)).mean(dim=2)
        return rearrange(self.conv(x, causal), _TO_DEPTH, p1=p1, p2=p2, p3=p3) + skip


class DepthToSpaceUpsample(nn.Module):
    """``(B, C, F', h, w)`` → ``(B, C/m, st·F' − (st−1), sh·h, sw·w)``: a conv to ``prod(stride)·C/m`` channels
    unfolded into space/time; optionally plus the input unfolded and tiled over channels (``residual``).
    Key: ``conv.conv.*``.

    Mirrors ``ltx_core.model.video_vae.sampling.DepthToSpaceUpsample`` (diffusers:
    ``diffusers.models.autoencoders.autoencoder_kl_ltx2.LTX2VideoUpsampler3d``).
    """

    def __init__(self, in_channels: int, stride: tuple[int, int, int], padding: PaddingMode, *,
                 residual: bool = False, reduction: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.residual = residual
        self.reduction = reduction
        self.conv = CausalConv3d(in_channels, math.prod(stride) * in_channels // reduction, padding)

    def forward(self, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
        """``(B, C, F', h, w)`` → ``(B, C/m, st·F' − (st − 1), sh·h, sw·w)`` (see the class docstring)."""
        p1, p2, p3 = self.stride
        if self.residual:
            skip = rearrange(x, _TO_SPACE, p1=p1, p2=p2, p3=p3)
            skip = skip.repeat(1, math.prod(self.stride) // self.reduction, 1, 1, 1)
            if p1 == 2:
                skip = skip[:, :, 1:]
        x = rearrange(self.conv(x, causal), _TO_SPACE, p1=p1, p2=p2, p3=p3)
        if p1 == 2:
            x = x[:, :, 1:]
        return x + skip if self.residual else x

