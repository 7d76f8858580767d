"""Residual blocks of the video VAE, with the optional timestep modulation and spatial noise of the decoder."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from ..transformer.timestep import TimestepEmbedder, sinusoidal_embedding
from .config import NormLayer, PaddingMode
from .ops import CausalConv3d, make_norm


class TimestepEmbedding(nn.Module):
    """Scaled timestep ``(B,)`` → ``(B, dim)``: 256 sinusoid features (cos, sin) → Linear → SiLU → Linear.
    Key: ``timestep_embedder.linear_{1,2}``.

    Mirrors ``ltx_core.model.transformer.timestep_embedding.PixArtAlphaCombinedTimestepSizeEmbeddings`` (as the
    VAE decoder uses it).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.timestep_embedder = TimestepEmbedder(dim)

    def forward(self, timestep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``timestep`` ``(B,)`` (already × ``timestep_scale_multiplier``) → ``(B, dim)`` in ``dtype``."""
        return self.timestep_embedder(sinusoidal_embedding(timestep.flatten()).to(dtype))


class ResnetBlock3D(nn.Module):
    """``x + conv2(act(norm2(conv1(act(norm1(x))))))``; with a 1×1×1 ``conv_shortcut`` and a GroupNorm(1)
    ``norm3`` on the skip path when the width changes. Optional: timestep AdaLN (``scale_shift_table`` ``(4, C)``)
    and per-channel spatial noise (``per_channel_scale{1,2}`` ``(C, 1, 1)``).

    Mirrors ``ltx_core.model.video_vae.resnet.ResnetBlock3D`` (diffusers:
    ``diffusers.models.autoencoders.autoencoder_kl_ltx2.LTX2VideoResnetBlock3d``).
    """

    def __init__(self, in_channels: int, out_channels: int, norm: NormLayer, padding: PaddingMode, *,
                 inject_noise: bool = False, timestep_conditioning: bool = False, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = make_norm(norm, in_channels, eps)
        self.conv1 = CausalConv3d(in_channels, out_channels, padding)
        self.norm2 = make_norm(norm, out_channels, eps)
        self.conv2 = CausalConv3d(out_channels, out_channels, padding)
        self.inject_noise = inject_noise
        if inject_noise:
            self.per_channel_scale1 = nn.Parameter(torch.zeros(in_channels, 1, 1))
            self.per_channel_scale2 = nn.Parameter(torch.zeros(in_channels, 1, 1))
        if in_channels != out_channels:
            self.norm3 = nn.GroupNorm(1, in_channels, eps=eps)
            self.conv_shortcut = nn.Conv3d(in_channels, out_channels, 1)
        else:
            self.norm3 = self.conv_shortcut = nn.Identity()
        self.timestep_conditioning = timestep_conditioning
        if timestep_conditioning:
            self.scale_shift_table = nn.Parameter(torch.zeros(4, in_channels))

    def _noise(self, h: torch.Tensor, scale: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        noise = torch.randn(h.shape[-2:], device=h.device, dtype=h.dtype, generator=generator)
        return h + (noise[None] * scale.to(h))[None, :, None]

    def forward(self, x: torch.Tensor, causal: bool = True, temb: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """``x`` ``(B, C_in, F, H, W)`` → ``(B, C_out, F, H, W)``; ``temb`` ``(B, 4·C_in, 1, 1, 1)`` when
        timestep-conditioned; ``generator`` draws the spatial noise of ``inject_noise``.

        Raises:
            InputError: the block is timestep-conditioned and ``temb`` is None.
        """
        h = self.norm1(x)
        if self.timestep_conditioning:
            if temb is None:
                raise InputError("This video VAE block is timestep-conditioned; pass the decoder a timestep.")
            ada = self.scale_shift_table[None, :, :, None, None, None].to(h) + temb.unflatten(1, (4, -1))
            shift1, scale1, shift2, scale2 = ada.unbind(dim=1)
            h = h * (1 + scale1) + shift1
        h = self.conv1(nn.functional.silu(h), causal)
        if self.inject_noise:
            h = self._noise(h, self.per_channel_scale1, generator)
        h = self.norm2(h)
        if self.timestep_conditioning:
            h = h * (1 + scale2) + shift2
        h = self.conv2(nn.functional.silu(h), causal)
        if self.inject_noise:
            h = self._noise(h, self.per_channel_scale2, generator)
        return self.conv_shortcut(self.norm3(x)) + h


class ResBlocks(nn.Module):
    """``num_layers`` same-width :class:`ResnetBlock3D` (block kind ``res_x``). Keys: ``res_blocks.N.*``, and
    ``time_embedder.*`` (→ ``(B, 4·C)``) when timestep-conditioned.

    Mirrors ``ltx_core.model.video_vae.resnet.UNetMidBlock3D`` (diffusers:
    ``diffusers.models.autoencoders.autoencoder_kl_ltx2.LTX2VideoMidBlock3d``).
    """

    def __init__(self, channels: int, num_layers: int, norm: NormLayer, padding: PaddingMode, *,
                 inject_noise: bool = False, timestep_conditioning: bool = False) -> None:
        super().__init__()
        self.timestep_conditioning = timestep_conditioning
        if timestep_conditioning:
            self.time_embedder = TimestepEmbedding(channels * 4)
        self.res_blocks = nn.ModuleList(
            ResnetBlock3D(channels, channels, norm, padding, inject_noise=inject_noise,
                          timestep_conditioning=timestep_conditioning)
            for _ in range(num_layers))

    def forward(self, x: torch.Tensor, causal: bool = True, timestep: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """``x`` ``(B, C, F, H, W)`` → same shape. ``timestep``: ``(B,)`` already multiplied by the decoder's
        ``timestep_scale_multiplier``.

        Raises:
            InputError: the blocks are timestep-conditioned and ``timestep`` is None.
        """
        temb = None
        if self.timestep_conditioning:
            if timestep is None:
                raise InputError("This video VAE block is timestep-conditioned; pass the decoder a timestep.")
            temb = self.time_embedder(timestep, x.dtype).view(x.shape[0], -1, 1, 1, 1)
        for block in self.res_blocks:
            x = block(x, causal, temb, generator)
        return x
