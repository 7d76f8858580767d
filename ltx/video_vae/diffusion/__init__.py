"""LTX-2.5's diffusion video decoder (``NADiffusionDecoder`` in a ``CausalDiffusionVAE`` file): neighbourhood-attention
stages that upsample the latent into a context volume, then one x0 denoising step over seeded pixel noise.

Same latent space as the convolutional decoder (the encoder is the conv VAE's); loading is in
:mod:`rs_ltxv.ltx.loading.diffusion_decoder`.
"""

from .attention import NeighbourhoodAttention, neighbourhood_attention
from .config import DiffusionDecoderConfig, is_diffusion_vae_section
from .model import DiffusionVideoDecoder, decode_noise_shape
from .tiled import (
    DEFAULT_DIFFUSION_TILING,
    TILED_MEAN_TOLERANCE,
    TILED_TOLERANCE,
    context_frames,
    decode_diffusion_tiled,
    iter_decode_diffusion_tiled,
)

__all__ = [
    "DEFAULT_DIFFUSION_TILING",
    "TILED_MEAN_TOLERANCE",
    "TILED_TOLERANCE",
    "DiffusionDecoderConfig",
    "DiffusionVideoDecoder",
    "NeighbourhoodAttention",
    "context_frames",
    "decode_diffusion_tiled",
    "decode_noise_shape",
    "is_diffusion_vae_section",
    "iter_decode_diffusion_tiled",
    "neighbourhood_attention",
]
