"""Encoder + decoder in one module, with untiled and tiled entry points."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CheckpointError
from .config import VideoVAEConfig
from .decoder import VideoDecoder
from .diffusion import DEFAULT_DIFFUSION_TILING, DiffusionVideoDecoder, decode_diffusion_tiled
from .encoder import VideoEncoder
from .tiled import decode_tiled, encode_tiled
from .tiling import TilingConfig


class VideoVAE(nn.Module):
    """``encoder`` and ``decoder`` (either may be None when a file holds only one half).

    Mirrors ``diffusers.models.autoencoders.autoencoder_kl_ltx2.AutoencoderKLLTX2Video`` (ltx-core keeps the two
    halves apart: ``ltx_core.model.video_vae.video_vae.VideoEncoder`` / ``VideoDecoder``).
    """

    def __init__(self, config: VideoVAEConfig, encoder: VideoEncoder | None,
                 decoder: VideoDecoder | DiffusionVideoDecoder | None) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.decoder = decoder

    def _need(self, part: str) -> nn.Module:
        module = getattr(self, part)
        if module is None:
            raise CheckpointError(f"This video VAE was loaded without its {part}; load a file that has "
                                  f"'vae.{part}.*' (or '{part}.*') tensors.")
        return module

    def encode(self, video: torch.Tensor, tiling: TilingConfig | None = None) -> torch.Tensor:
        """Pixels ``(B, 3, 1 + 8k, H, W)`` in [-1, 1] → normalised latents ``(B, C, 1 + k, H/32, W/32)``. Tiled
        when ``tiling`` is given.

        Raises:
            CheckpointError: the VAE was loaded without its encoder.
            InputError: as :meth:`VideoEncoder.forward` / :func:`encode_tiled`.
        """
        encoder = self._need("encoder")
        with torch.inference_mode():
            return encoder(video) if tiling is None else encode_tiled(encoder, video, tiling)

    def decode(self, latent: torch.Tensor, tiling: TilingConfig | None = None, *, memory_budget: int | None = None,
               timestep: torch.Tensor | float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalised latents ``(B, C, F', H', W')`` → pixels ``(B, 3, 1 + 8(F'−1), 32H', 32W')``. Tiled when
        ``tiling`` or ``memory_budget`` (bytes) is given. An LTX-2.5 diffusion decoder draws its noise from
        ``generator``, ignores ``timestep``, and tiles by ``tiling`` (:func:`decode_diffusion_tiled`; with only a
        ``memory_budget``, by its default tiles).

        Raises:
            CheckpointError: the VAE was loaded without its decoder.
            InputError: as :meth:`VideoDecoder.forward` / :func:`decode_tiled`.
        """
        decoder = self._need("decoder")
        with torch.inference_mode():
            if isinstance(decoder, DiffusionVideoDecoder):
                if tiling is None and memory_budget is None:
                    return decoder(latent, generator)
                return decode_diffusion_tiled(decoder, latent, tiling or DEFAULT_DIFFUSION_TILING, generator=generator)
            if tiling is None and memory_budget is None:
                return decoder(latent, timestep, generator)
            return decode_tiled(decoder, latent, tiling, memory_budget=memory_budget, timestep=timestep,
                                generator=generator)
