"""Tiny random-weight LTX-2 / LTX-2.3 checkpoints in the official single-file format (no downloads needed).

Used by the README's first command, by ``python -m rs_ltxv tiny`` and by tests. Same architecture and key names as
the released models, just narrow and shallow.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import torch
from safetensors.torch import save_file

from .config import ConnectorConfig, TransformerConfig, Version
from .errors import ConfigError
from .random_weights import random_init
from .text.processor import TextConnectors
from .transformer.model import LTXAVTransformer

__all__ = ["TINY_GEMMA_DIM", "TINY_GEMMA_STATES", "random_init", "tiny_config", "tiny_state_dict",
           "write_tiny_checkpoint"]

TINY_GEMMA_DIM = 24
TINY_GEMMA_STATES = 3


def tiny_config(version: Version | str = Version.LTX23, *, layers: int = 2, latent_channels: int = 128,
                audio_channels: int = 8) -> TransformerConfig:
    """A tiny config of the given layout: video 2×16, audio 2×8, text width 24; latent channels as given
    (the real models: 128 video, 8 audio × 16 mel bins).

    Raises:
        ConfigError: ``version`` is not "2.0" / "2.3" (a :class:`Version`).
    """
    try:
        version = Version(version)
    except ValueError:
        raise ConfigError(f"Unknown LTX version {version!r}; choose one of: "
                          f"{', '.join(v.value for v in Version)}.") from None
    v23 = version is Version.LTX23
    base = TransformerConfig(
        num_layers=layers, num_attention_heads=2, attention_head_dim=16, cross_attention_dim=32,
        audio_num_attention_heads=2, audio_attention_head_dim=8, audio_cross_attention_dim=16,
        in_channels=latent_channels, out_channels=latent_channels, audio_in_channels=audio_channels * 16,
        audio_out_channels=audio_channels * 16, caption_channels=TINY_GEMMA_DIM,
        apply_gated_attention=v23, cross_attention_adaln=v23, caption_proj_before_connector=v23,
    )
    conn = ConnectorConfig(num_attention_heads=2, num_layers=2, num_learnable_registers=8, apply_gated_attention=v23)
    return replace(
        base,
        video_connector=replace(conn, attention_head_dim=(base.inner_dim if v23 else TINY_GEMMA_DIM) // 2),
        audio_connector=replace(conn, attention_head_dim=(base.audio_inner_dim if v23 else TINY_GEMMA_DIM) // 2),
    )


def tiny_state_dict(cfg: TransformerConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Official single-file names → tensors (each of its parameter's shape) for a random transformer + text
    connectors of ``cfg``; ``seed`` makes it reproducible."""
    with torch.device("meta"):
        model = LTXAVTransformer(cfg)
        text = TextConnectors(cfg, TINY_GEMMA_STATES)
    random_init(model, seed)
    random_init(text, seed + 1)
    sd = {f"model.diffusion_model.{k}": v for k, v in model.state_dict().items()}
    sd.update({f"text_embedding_projection.{k}": v for k, v in text.feature_extractor.state_dict().items()})
    for name, prefix in (("video_connector", "video_embeddings_connector"), ("audio_connector",
                                                                             "audio_embeddings_connector")):
        sd.update({f"model.diffusion_model.{prefix}.{k}": v for k, v in getattr(text, name).state_dict().items()})
    return {k: v.contiguous() for k, v in sd.items()}


def write_tiny_checkpoint(path: str | os.PathLike, version: Version | str = Version.LTX23, seed: int = 0,
                          dtype: torch.dtype = torch.bfloat16, *, full: bool = False) -> str:
    """Write a tiny official-format checkpoint and return its path: transformer + text connectors, and with
    ``full`` also the video VAE, audio VAE and vocoder (16 video / 1 audio latent channels so it runs fast).

    Raises:
        ConfigError: as :func:`tiny_config`.
    """
    cfg = tiny_config(version, latent_channels=16, audio_channels=1) if full else tiny_config(version)
    sd = {k: v.to(dtype) for k, v in tiny_state_dict(cfg, seed).items()}
    config = {"transformer": cfg.to_dict()}
    if full:
        from .tiny_parts import tiny_component_config, tiny_component_state

        parts = tiny_component_config(latent_channels=16, audio_channels=1)
        config.update(parts)
        sd.update({k: v.to(dtype) for k, v in tiny_component_state(parts, seed + 10).items()})
    meta = {"config": json.dumps(config), "model_version": f"{Version(version).value}.0-tiny"}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file(sd, str(path), metadata=meta)
    return str(path)
