"""The audio VAE: log-mel ``(B, 2, T, 64)`` ↔ normalised latents ``(B, 8, T', 16)`` with ``T' = (T + 3) // 4``.

Module and parameter names are the official ones after ``audio_vae.encoder.`` / ``audio_vae.decoder.`` are stripped;
``per_channel_statistics.*`` comes from the file's shared ``audio_vae.per_channel_statistics.*``. Latents are
normalised per feature of the patchified layout ``(B, T', C·F)`` (128 features for the released models), the same
layout the transformer's audio tokens use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .config import AudioVAEConfig, CausalityAxis
from .layers import AttnBlock, CausalConv2d, Downsample, MidBlock, ResnetBlock, Upsample, make_norm


def patchify(latent: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, F)`` → ``(B, T, C·F)`` (channel-major features, as the transformer tokens).

    Mirrors ``ltx_core.components.patchifiers.AudioPatchifier.patchify``.
    """
    b, c, t, f = latent.shape
    return latent.permute(0, 2, 1, 3).reshape(b, t, c * f)


def unpatchify(tokens: torch.Tensor, channels: int) -> torch.Tensor:
    """``(B, T, C·F)`` → ``(B, C, T, F)`` with ``C = channels``.

    Mirrors ``ltx_core.components.patchifiers.AudioPatchifier.unpatchify``.
    """
    b, t, cf = tokens.shape
    return tokens.reshape(b, t, channels, cf // channels).permute(0, 2, 1, 3)


class PerChannelStatistics(nn.Module):
    """Dataset statistics of the patchified latent features: ``normalize(x) = (x − mean) / std``. Buffers (checkpoint
    names) ``mean-of-means`` and ``std-of-means``, ``(C·F,)`` each.

    Mirrors ``ltx_core.model.audio_vae.ops.PerChannelStatistics``.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("std-of-means", torch.ones(features))
        self.register_buffer("mean-of-means", torch.zeros(features))

    @property
    def std(self) -> torch.Tensor:
        """``std-of-means``, shape ``(features,)``."""
        return self.get_buffer("std-of-means")

    @property
    def mean(self) -> torch.Tensor:
        """``mean-of-means``, shape ``(features,)``."""
        return self.get_buffer("mean-of-means")

    def normalize(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, T, features)`` → ``(tokens − mean) / std``, same shape."""
        return (tokens - self.mean.to(tokens)) / self.std.to(tokens)

    def un_normalize(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, T, features)`` → ``tokens · std + mean``, same shape."""
        return tokens * self.std.to(tokens) + self.mean.to(tokens)


def _check_input(x: torch.Tensor, channels: int, what: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise InputError(f"The audio {what} expects (B, {channels}, T, F) tensors, got {tuple(x.shape)}.")


class AudioEncoder(nn.Module):
    """Log-mel ``(B, in_channels, T, mel_bins)`` → normalised latent means ``(B, z_channels, T', mel_bins / 4)``.

    Mirrors ``ltx_core.model.audio_vae.audio_vae.AudioEncoder`` (diffusers:
    ``diffusers.models.autoencoders.autoencoder_kl_ltx2_audio.LTX2AudioEncoder``).
    """

    def __init__(self, cfg: AudioVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        axis, norm = cfg.causality_axis, cfg.norm_type
        self.per_channel_statistics = PerChannelStatistics(cfg.ch)
        self.conv_in = CausalConv2d(cfg.in_channels, cfg.ch, 3, axis)
        self.down = nn.ModuleList()
        block_in, res = cfg.ch, cfg.resolution
        for level, mult in enumerate(cfg.ch_mult):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            block_in = cfg.ch * (1, *cfg.ch_mult)[level]
            for _ in range(cfg.num_res_blocks):
                stage.block.append(ResnetBlock(block_in, cfg.ch * mult, norm, axis))
                block_in = cfg.ch * mult
                if res in cfg.attn_resolutions:
                    stage.attn.append(AttnBlock(block_in, norm))
            if level != len(cfg.ch_mult) - 1:
                stage.downsample = Downsample(block_in, cfg.resamp_with_conv, axis)
                res //= 2
            self.down.append(stage)
        self.mid = MidBlock(block_in, norm, axis, cfg.mid_block_add_attention)
        self.norm_out = make_norm(block_in, norm)
        self.conv_out = CausalConv2d(block_in, 2 * cfg.z_channels if cfg.double_z else cfg.z_channels, 3, axis)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``(B, in_channels, T, mel_bins)`` (100 frames per second) → latent ``(B, z_channels, T', F')``
        with ``T' = (T + 3) // 4`` (25 latent frames per second).

        Raises:
            InputError: ``mel`` is not ``(B, in_channels, T, F)``.
        """
        _check_input(mel, self.cfg.in_channels, "encoder")
        h = self.conv_in(mel)
        for stage in self.down:
            for i, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.conv_out(F.silu(self.norm_out(self.mid(h))))
        means = torch.chunk(h, 2, dim=1)[0]  # first half = posterior mean (as ltx-core, also for double_z=False)
        return unpatchify(self.per_channel_statistics.normalize(patchify(means)), means.shape[1])


class AudioDecoder(nn.Module):
    """Normalised latent ``(B, z_channels, T', F')`` → log-mel ``(B, out_ch, T, mel_bins)`` with ``T = 4·T' − 3``
    (causal) or ``4·T'``; the decoder output is cropped / zero-padded to exactly that size.

    Mirrors ``ltx_core.model.audio_vae.audio_vae.AudioDecoder`` (its ``_adjust_output_shape`` does the crop / pad;
    diffusers: ``diffusers.models.autoencoders.autoencoder_kl_ltx2_audio.LTX2AudioDecoder``).
    """

    def __init__(self, cfg: AudioVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        axis, norm = cfg.causality_axis, cfg.norm_type
        levels = len(cfg.ch_mult)
        self.per_channel_statistics = PerChannelStatistics(cfg.ch)
        block_in = cfg.ch * cfg.ch_mult[-1]
        res = cfg.resolution // 2 ** (levels - 1)
        self.conv_in = CausalConv2d(cfg.z_channels, block_in, 3, axis)
        self.mid = MidBlock(block_in, norm, axis, cfg.mid_block_add_attention)
        stages: list[nn.Module] = []
        for level in reversed(range(levels)):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(cfg.num_res_blocks + 1):
                stage.block.append(ResnetBlock(block_in, cfg.ch * cfg.ch_mult[level], norm, axis))
                block_in = cfg.ch * cfg.ch_mult[level]
                if res in cfg.attn_resolutions:
                    stage.attn.append(AttnBlock(block_in, norm))
            if level != 0:
                stage.upsample = Upsample(block_in, cfg.resamp_with_conv, axis)
                res *= 2
            stages.insert(0, stage)
        self.up = nn.ModuleList(stages)  # up[0] is the finest level; run from the last to the first
        self.norm_out = make_norm(block_in, norm)
        self.conv_out = CausalConv2d(block_in, cfg.out_ch, 3, axis)

    def output_frames(self, latent_frames: int) -> int:
        """Mel frames (100 per second) decoded from ``latent_frames`` latent frames: ``4·T' − 3`` when causal."""
        factor = self.cfg.downsample_factor
        frames = latent_frames * factor
        if self.cfg.causality_axis is not CausalityAxis.NONE:
            frames = max(frames - (factor - 1), 1)
        return frames

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised latent ``(B, z_channels, T', F')`` → log-mel ``(B, out_ch, output_frames(T'), mel_bins)``.

        Raises:
            InputError: ``latent`` is not ``(B, z_channels, T', F')``.
        """
        _check_input(latent, self.cfg.z_channels, "decoder")
        _, c, t, f = latent.shape
        x = unpatchify(self.per_channel_statistics.un_normalize(patchify(latent)), c)
        h = self.mid(self.conv_in(x))
        for stage in reversed(self.up):
            for i, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        h = self.conv_out(F.silu(self.norm_out(h)))
        frames, bins = self.output_frames(t), self.cfg.mel_bins or f
        h = h[:, :, :frames, :bins]
        return F.pad(h, (0, bins - h.shape[3], 0, frames - h.shape[2]))
