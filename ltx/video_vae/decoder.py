"""The video decoder: normalised latents ``(B, 128, F', H', W')`` → pixels ``(B, 3, 1 + 8(F'−1), 32H', 32W')``
in about [-1, 1] (released layouts)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import DECODER_BUILDERS
from .config import VideoVAEConfig
from .frames import check_latent_shape
from .ops import CausalConv3d, PerChannelStatistics, make_norm, unpatchify
from .resnet import ResBlocks, ResnetBlock3D, TimestepEmbedding

DECODE_NOISE_SCALE = 0.025  # share of fresh noise mixed into the latent by timestep-conditioned decoders
DECODE_TIMESTEP = 0.05  # their default timestep (before ×timestep_scale_multiplier)


class VideoDecoder(nn.Module):
    """un-normalise → ``conv_in`` (to ``8·decoder_base_channels``) → ``up_blocks`` (the config's decoder blocks
    reversed) → norm → [timestep AdaLN] → SiLU → ``conv_out`` → unpatchify.

    Keys (official, after ``vae.decoder.``): ``conv_in``, ``up_blocks.N``, ``conv_out``, ``per_channel_statistics``,
    and with ``timestep_conditioning``: ``timestep_scale_multiplier`` (scalar), ``last_time_embedder``,
    ``last_scale_shift_table`` ``(2, C)``. Temporal padding is symmetric unless ``causal_decoder``.

    Mirrors ``ltx_core.model.video_vae.video_vae.VideoDecoder`` (diffusers:
    ``diffusers.models.autoencoders.autoencoder_kl_ltx2.LTX2VideoDecoder3d``).
    """

    def __init__(self, config: VideoVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.causal = config.causal_decoder
        self.timestep_conditioning = config.timestep_conditioning
        pad = config.decoder_padding
        self.per_channel_statistics = PerChannelStatistics(config.latent_channels)
        channels = config.decoder_base_channels * 8
        self.conv_in = CausalConv3d(config.latent_channels, channels, pad)
        self.up_blocks = nn.ModuleList()
        for spec in reversed(config.decoder_blocks):
            block, channels = DECODER_BUILDERS[spec.name](spec, channels, config.norm_layer, pad,
                                                          config.timestep_conditioning)
            self.up_blocks.append(block)
        self.conv_norm_out = make_norm(config.norm_layer, channels)
        self.conv_out = CausalConv3d(channels, config.out_channels * config.patch_size**2, pad)
        if config.timestep_conditioning:
            self.timestep_scale_multiplier = nn.Parameter(torch.tensor(1000.0))
            self.last_time_embedder = TimestepEmbedding(channels * 2)
            self.last_scale_shift_table = nn.Parameter(torch.zeros(2, channels))

    def forward(self, latent: torch.Tensor, timestep: torch.Tensor | float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """``latent`` ``(B, C, F', H', W')`` normalised → video ``(B, 3, 1 + 8(F'−1), 32H', 32W')``.

        ``timestep`` (``(B,)`` or a float, default 0.05) and ``generator`` (the fresh noise, and spatial noise of
        ``inject_noise`` blocks) matter only for timestep-conditioned / noise-injecting decoders. Units: latent
        frames in, pixel frames out. Mirrors ``VideoDecoder.forward`` of ltx-core.

        Raises:
            InputError: ``latent`` is not ``(B, latent_channels, F', H', W')``.
        """
        check_latent_shape(tuple(latent.shape), self.config.latent_channels)
        batch = latent.shape[0]
        x = latent
        scaled = None
        if self.timestep_conditioning:
            noise = torch.randn(x.size(), generator=generator, dtype=x.dtype, device=x.device)
            x = noise * DECODE_NOISE_SCALE + (1.0 - DECODE_NOISE_SCALE) * x
            if timestep is None:
                timestep = DECODE_TIMESTEP
            t = torch.as_tensor(timestep, dtype=x.dtype, device=x.device)
            t = t.expand(batch) if t.dim() == 0 else t
            scaled = t * self.timestep_scale_multiplier.to(x)
        x = self.conv_in(self.per_channel_statistics.un_normalize(x), self.causal)
        for block in self.up_blocks:
            if isinstance(block, ResBlocks):
                x = block(x, self.causal, scaled, generator)
            elif isinstance(block, ResnetBlock3D):
                x = block(x, self.causal, None, generator)
            else:
                x = block(x, self.causal)
        x = self.conv_norm_out(x)
        if self.timestep_conditioning:
            emb = self.last_time_embedder(scaled, x.dtype).view(batch, 2, -1, 1, 1, 1)
            shift, scale = (self.last_scale_shift_table[None, :, :, None, None, None].to(x) + emb).unbind(dim=1)
            x = x * (1 + scale) + shift
        x = self.conv_out(nn.functional.silu(x), self.causal)
        return unpatchify(x, self.config.patch_size)
