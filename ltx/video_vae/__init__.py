"""The causal video VAE of LTX-2 / LTX-2.3: encoder, decoder, per-channel latent statistics, tiled encode/decode."""

from .config import BlockSpec, LogVariance, NormLayer, PaddingMode, VideoVAEConfig
from .decoder import VideoDecoder
from .encoder import VideoEncoder
from .frames import latent_frames, pixel_frames
from .ops import patchify, unpatchify
from .tiled import decode_tiled, encode_tiled, iter_decode_tiled
from .tiling import TilingConfig, auto_tiling, estimate_decode_bytes
from .vae import VideoVAE

__all__ = [
    "BlockSpec",
    "LogVariance",
    "NormLayer",
    "PaddingMode",
    "TilingConfig",
    "VideoDecoder",
    "VideoEncoder",
    "VideoVAE",
    "VideoVAEConfig",
    "auto_tiling",
    "decode_tiled",
    "encode_tiled",
    "estimate_decode_bytes",
    "iter_decode_tiled",
    "latent_frames",
    "patchify",
    "pixel_frames",
    "unpatchify",
]
