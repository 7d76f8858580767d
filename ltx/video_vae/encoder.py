"""The causal video encoder: pixels ``(B, 3, 1 + 8k, H, W)`` in [-1, 1] → normalised latent means
``(B, 128, 1 + k, H/32, W/32)`` (released layouts)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ENCODER_BUILDERS
from .config import LogVariance, VideoVAEConfig
from .frames import check_video_shape
from .ops import CausalConv3d, PerChannelStatistics, make_norm, patchify

_EXTRA_CHANNELS = {LogVariance.PER_CHANNEL: None, LogVariance.UNIFORM: 1, LogVariance.CONSTANT: 1}


class VideoEncoder(nn.Module):
    """patchify → ``conv_in`` → ``down_blocks`` → norm → SiLU → ``conv_out`` → means → per-channel normalise.

    Keys (official, after ``vae.encoder.``): ``conv_in``, ``down_blocks.N``, ``conv_out``,
    ``per_channel_statistics`` (loaded from ``vae.per_channel_statistics.*``). Always causal in time.

    Mirrors ``ltx_core.model.video_vae.video_vae.VideoEncoder`` (diffusers:
    ``diffusers.models.autoencoders.autoencoder_kl_ltx2.LTX2VideoEncoder3d``).
    """

    def __init__(self, config: VideoVAEConfig) -> None:
        super().__init__()
        self.config = config
        pad = config.encoder_padding
        self.per_channel_statistics = PerChannelStatistics(config.latent_channels)
        channels = config.latent_channels
        self.conv_in = CausalConv3d(config.in_channels * config.patch_size**2, channels, pad)
        self.down_blocks = nn.ModuleList()
        for spec in config.encoder_blocks:
            block, channels = ENCODER_BUILDERS[spec.name](spec, channels, config.norm_layer, pad, False)
            self.down_blocks.append(block)
        self.conv_norm_out = make_norm(config.norm_layer, channels)
        extra = _EXTRA_CHANNELS[config.latent_log_var]
        out = 2 * config.latent_channels if extra is None else config.latent_channels + extra
        self.conv_out = CausalConv3d(channels, out, pad)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``video`` ``(B, C, 1 + 8k, H, W)`` → normalised means ``(B, latent_channels, 1 + k, H/32, W/32)``.

        Units: pixel frames in, latent frames out. Mirrors ``VideoEncoder.forward`` of ltx-core, which crops extra
        frames with a warning where this one refuses them.

        Raises:
            InputError: not a 5-D tensor, the wrong channel count, a frame count other than ``1 + 8k``, or a frame
                size that is not a multiple of 32 pixels.
        """
        cfg = self.config
        check_video_shape(tuple(video.shape), cfg.in_channels, cfg.temporal_compression, cfg.spatial_compression)
        x = self.conv_in(patchify(video, cfg.patch_size))
        for block in self.down_blocks:
            x = block(x)
        x = self.conv_out(nn.functional.silu(self.conv_norm_out(x)))
        return self.per_channel_statistics.normalize(x[:, : cfg.latent_channels])
