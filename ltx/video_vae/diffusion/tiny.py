"""A tiny random diffusion video VAE in the official LTX-2.5 file layout, for tests and the tiny model set.

:func:`write_tiny_diffusion_decoder` writes what ``vae/ltx-2.5-video-vae-bf16.safetensors`` holds, narrow and
shallow: the diffusion decoder (``decoder.*``), the convolutional encoder (``encoder.*``) and the latent statistics
(``per_channel_statistics.*``), with the ``config["vae"]`` metadata section (``_class_name`` ``CausalDiffusionVAE``,
``decoder`` and ``encoder`` nested, ``model_output_type`` x0). With ``prefix="vae."`` the same tensors carry the
single-file names (``vae.decoder.*`` …) for merging into a tiny checkpoint (:func:`tiny_diffusion_vae_state`).

The tiny decoder keeps the released strides' pixel geometry — ``F`` latent frames → ``8(F−1)+1`` frames, 32 pixels
per latent cell — and the released x0 single step, so it drops into the pipeline in place of the conv decoder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ...random_weights import random_init
from ..encoder import VideoEncoder
from .config import DiffusionDecoderConfig, encoder_vae_config
from .model import DiffusionVideoDecoder

_RES = ["res_x", {"num_layers": 1}]


def tiny_diffusion_config(latent_channels: int = 16) -> DiffusionDecoderConfig:
    """A CPU-sized decoder: widths 64 → 16, one block per stage (two in stage 5), 3-wide windows (stage 5: 3 × 5 ×
    5), head width 16, patch 8 with spatial strides 2, 1, 1, 2 (32 px per latent cell, like the released 4 with
    2, 1, 2, 2), the released temporal strides, t-embedding width 32, x0 in one step, timestep × 1000."""
    return DiffusionDecoderConfig(
        latent_channels=latent_channels, patch_size=8, head_dim=16, stage_channels=(64, 32, 32, 32, 16),
        stage_depths=(1, 1, 1, 1, 2), stage_kernels=((3, 3, 3),) * 4,
        upsample_strides=((1, 2, 2), (2, 1, 1), (2, 1, 1), (2, 2, 2)), upsample_reductions=(2, 1, 1, 2),
        stage5_kernel=(3, 5, 5), stage5_channels=16, t_emb_dim=32)


def tiny_encoder_section(latent_channels: int = 16) -> dict[str, Any]:
    """The nested ``vae.encoder`` section of a tiny ``CausalDiffusionVAE``: the tiny conv encoder of
    :func:`rs_ltxv.ltx.tiny_parts.tiny_component_config` (8× frames, 32× pixels) with the 2.5 naming (``blocks``,
    ``out_channels`` = latent width, ``latent_log_var`` constant)."""
    return {
        "_class_name": "Encoder", "dims": 3, "in_channels": 3, "out_channels": latent_channels, "patch_size": 4,
        "norm_layer": "pixel_norm", "latent_log_var": "constant", "spatial_padding_mode": "zeros",
        "blocks": [_RES, ["compress_space_res", {"multiplier": 2}], _RES, ["compress_time_res", {"multiplier": 2}],
                   _RES, ["compress_all_res", {"multiplier": 2}], _RES, ["compress_all_res", {"multiplier": 1}], _RES],
    }


def tiny_diffusion_vae_state(latent_channels: int = 16, seed: int = 0, *, prefix: str = "",
                             with_encoder: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors under ``{prefix}decoder.``, ``{prefix}encoder.``, ``{prefix}per_channel_statistics.``; the
    ``config["vae"]`` section) of a tiny random diffusion VAE. Random statistics: means N(0, 0.1²), stds in
    [0.5, 1.5)."""
    cfg = tiny_diffusion_config(latent_channels)
    with torch.device("meta"):
        decoder = DiffusionVideoDecoder(cfg)
    random_init(decoder, seed, std=0.1)
    gen = torch.Generator().manual_seed(seed + 1)
    stats = {"mean-of-means": torch.randn(latent_channels, generator=gen) * 0.1,
             "std-of-means": torch.rand(latent_channels, generator=gen) + 0.5}
    tensors = {f"{prefix}decoder.{k}": v for k, v in decoder.state_dict().items()
               if not k.startswith("per_channel_statistics.")}
    tensors.update({f"{prefix}per_channel_statistics.{k}": v for k, v in stats.items()})
    section = cfg.to_dict()
    if with_encoder:
        section["encoder"] = tiny_encoder_section(latent_channels)
        with torch.device("meta"):
            encoder = VideoEncoder(encoder_vae_config(section["encoder"]))
        random_init(encoder, seed + 2, std=0.05)
        tensors.update({f"{prefix}encoder.{k}": v for k, v in encoder.state_dict().items()
                        if not k.startswith("per_channel_statistics.")})
    return {k: v.contiguous() for k, v in tensors.items()}, section


def write_tiny_diffusion_decoder(path: str | os.PathLike, latent_channels: int = 16, seed: int = 0, *,
                                 prefix: str = "", with_encoder: bool = True,
                                 dtype: torch.dtype = torch.float32) -> Path:
    """Write a tiny diffusion VAE file (module docstring) in ``dtype`` and return its path. ``prefix`` ""
    (the released standalone file) or ``"vae."`` (single-file names); ``latent_channels`` must match the tiny
    transformer's (16 in the tiny set, 128 for core-compatible files)."""
    from safetensors.torch import save

    tensors, section = tiny_diffusion_vae_state(latent_channels, seed, prefix=prefix, with_encoder=with_encoder)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # bytes written by Python, not safetensors' save_file: its Rust writer creates files 0600, the others get 0644
    data = save({k: v.to(dtype) for k, v in tensors.items()}, metadata={"config": json.dumps({"vae": section})})
    out.write_bytes(data)
    return out
