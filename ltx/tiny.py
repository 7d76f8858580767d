"""Tiny random-weight LTX-2 / LTX-2.3 checkpoints in the official single-file format (no downloads needed).

Used by the README's first command, by ``python -m rs_ltxv tiny`` and by tests. Same architecture and key names as
the released models, just narrow and shallow.

:func:`write_tiny_set` writes every model file the example workflows name (:data:`TINY_SET`), tiny, under the
official file names in ComfyUI's model-folder layout, so the examples run without downloads: the full checkpoint,
its GGUF + split-VAE form (:func:`split_checkpoint`), a Gemma-3 text encoder in ComfyUI's single-file layout, the
latent upsampler, and for the example that uses ComfyUI's own loaders a checkpoint those loaders accept
(:func:`write_core_compatible_checkpoint`) with a LoRA, and the IC-LoRA example's control LoRA (its
``reference_downscale_factor`` metadata included).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .config import ConnectorConfig, TransformerConfig, Version
from .errors import CheckpointError, ConfigError, InputError
from .pipeline.output_file import save_safetensors
from .random_weights import random_init
from .text.processor import TextConnectors
from .transformer.model import LTXAVTransformer

__all__ = ["TINY_GEMMA_DIM", "TINY_GEMMA_STATES", "TINY_SET", "TinyFile", "random_init", "split_checkpoint",
           "tiny_config", "tiny_state_dict", "write_core_compatible_checkpoint", "write_tiny_checkpoint",
           "write_tiny_set"]

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
    save_safetensors(sd, str(path), metadata=meta)
    return str(path)


_RES = ["res_x", {"num_layers": 1}]


def write_core_compatible_checkpoint(path: str | os.PathLike, version: Version | str = Version.LTX23,
                                     seed: int = 1) -> dict[str, torch.Tensor]:
    """A tiny LTX-2 / LTX-2.3 checkpoint (float32) that ComfyUI core's loaders accept as well as ours: connectors
    with 128 registers and an 8-channel audio VAE (core hard-codes both), a 128-channel video latent (core's latent
    statistics are 128 wide), the video VAE encoder at a constant width. Returns the tensors written (official
    names → tensors, each of its parameter's shape).

    Raises:
        ConfigError: as :func:`tiny_config`.
    """
    from .tiny_parts import tiny_component_config, tiny_component_state

    cfg = tiny_config(version)
    cfg = replace(cfg, video_connector=replace(cfg.video_connector, num_learnable_registers=128),
                  audio_connector=replace(cfg.audio_connector, num_learnable_registers=128))
    parts = tiny_component_config(latent_channels=128, audio_channels=8)
    parts["vae"]["encoder_blocks"] = [_RES, ["compress_all_res", {"multiplier": 1}], _RES]
    sd = tiny_state_dict(cfg, seed=seed)
    sd.update(tiny_component_state(parts, seed=seed + 10))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_safetensors(sd, str(path), metadata={"config": json.dumps({"transformer": cfg.to_dict(), **parts})})
    return sd


def split_checkpoint(checkpoint: str | os.PathLike, gguf: str | os.PathLike, video_vae: str | os.PathLike,
                     audio_vae: str | os.PathLike) -> None:
    """Split a (tiny) official single-file checkpoint the way ComfyUI users hold the parts: the transformer with its
    text connectors and text projection as a GGUF at ``gguf`` (Q8_0 for every 2-D ``.weight`` whose rows are a
    multiple of 32, F32 otherwise; the transformer config in the ``config`` metadata key), the video VAE at
    ``video_vae`` and the audio VAE with the vocoder at ``audio_vae`` (``.safetensors``, each with its config
    section). Reads the whole file into memory: meant for tiny checkpoints.

    Raises:
        CheckpointError: ``checkpoint`` has no config metadata or lacks the VAE / audio VAE / vocoder sections.
    """
    from gguf import GGMLQuantizationType as Q
    from safetensors import safe_open

    from ..gguf_loader.writer import write_gguf

    with safe_open(str(checkpoint), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata() or {}
    config = json.loads(meta.get("config") or "{}")
    missing = [k for k in ("transformer", "vae", "audio_vae", "vocoder") if k not in config]
    if missing:
        raise CheckpointError(f"{Path(checkpoint).name}: the config metadata lacks {missing}; split_checkpoint "
                              "needs a full checkpoint (write_tiny_checkpoint(..., full=True)).")
    video = {k: v for k, v in tensors.items() if k.startswith("vae.")}
    audio = {k: v for k, v in tensors.items() if k.startswith(("audio_vae.", "vocoder."))}
    rest = {k: v for k, v in tensors.items() if k not in video and k not in audio}

    def qtype(name: str, t: torch.Tensor) -> Q:
        return Q.Q8_0 if name.endswith(".weight") and t.ndim == 2 and t.shape[1] % 32 == 0 else Q.F32

    for out in (gguf, video_vae, audio_vae):
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_gguf(gguf, rest, qtype, metadata={"config": json.dumps({"transformer": config["transformer"]})})
    save_safetensors(video, str(video_vae), metadata={"config": json.dumps({"vae": config["vae"]})})
    audio_config = {k: config[k] for k in ("audio_vae", "vocoder")}
    save_safetensors(audio, str(audio_vae), metadata={"config": json.dumps(audio_config)})


@dataclass(frozen=True)
class TinyFile:
    """One file of the tiny model set: its ComfyUI model folder (``checkpoints``, ``text_encoders`` …), its file
    name (the official one the example workflows use) and what it holds."""

    folder: str
    name: str
    what: str

    @property
    def path(self) -> str:
        """``folder/name``, relative to the models folder."""
        return f"{self.folder}/{self.name}"


#: the distilled LTX-2.3 checkpoint (full: transformer, connectors, VAEs, vocoder) most examples load
CHECKPOINT = TinyFile("checkpoints", "ltx-2.3-22b-distilled.safetensors",
                      "LTX-2.3 checkpoint: transformer, text connectors, video VAE, audio VAE, vocoder")
GEMMA = TinyFile("text_encoders", "gemma_3_12B_it.safetensors",
                 "Gemma-3 text encoder, ComfyUI single-file layout, tokenizer inside")
UPSAMPLER = TinyFile("latent_upscale_models", "ltx-2.3-spatial-upscaler-x2-1.1.safetensors",
                     "2x spatial latent upsampler")
GGUF = TinyFile("diffusion_models", "ltx-2.3-22b-distilled-Q8_0.gguf",
                "the checkpoint's transformer + text connectors as a Q8_0 GGUF")
VIDEO_VAE = TinyFile("vae", "LTX23_video_vae_bf16.safetensors", "the checkpoint's video VAE alone, float32")
AUDIO_VAE = TinyFile("vae", "LTX23_audio_vae_bf16.safetensors",
                     "the checkpoint's audio VAE and vocoder alone, float32")
CORE_CHECKPOINT = TinyFile("checkpoints", "ltx-2.3-22b-dev-fp8.safetensors",
                           "LTX-2.3 checkpoint ComfyUI core's loaders accept, float32 (not fp8)")
CORE_LORA = TinyFile("loras", "ltx_2.3_22b_distilled_1.1_lora_dynamic_fro09_avg_rank_111_bf16.safetensors",
                     "a LoRA for ltx-2.3-22b-dev-fp8.safetensors")
CORE_GEMMA = TinyFile("text_encoders", "gemma_3_12B_it_fp4_mixed.safetensors",
                      "the same tiny Gemma-3, not fp4; ComfyUI core's own Gemma loader needs the real 12B")
#: the IC-LoRA example's control LoRA (Lightricks' union control, trained on half-size references)
IC_LORA = TinyFile("loras", "ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors",
                   "an IC-LoRA for ltx-2.3-22b-distilled.safetensors, metadata reference_downscale_factor=2")
#: the ``reference_downscale_factor`` metadata :data:`IC_LORA` records (output size ÷ reference size)
IC_LORA_FACTOR = 2

#: every file :func:`write_tiny_set` writes, in that order
TINY_SET: tuple[TinyFile, ...] = (CHECKPOINT, GEMMA, UPSAMPLER, GGUF, VIDEO_VAE, AUDIO_VAE, CORE_CHECKPOINT, CORE_LORA,
                                  CORE_GEMMA, IC_LORA)


def _write_set(root: Path, seed: int) -> None:
    from safetensors.torch import load_file

    from .tiny_parts import write_tiny_gemma_file, write_tiny_lora, write_tiny_upsampler

    at = {f.name: root / f.folder / f.name for f in TINY_SET}
    write_tiny_checkpoint(at[CHECKPOINT.name], Version.LTX23, seed=seed, dtype=torch.float32, full=True)
    write_tiny_gemma_file(at[GEMMA.name], seed=seed)
    write_tiny_upsampler(at[UPSAMPLER.name], channels=16, seed=seed + 5)
    split_checkpoint(at[CHECKPOINT.name], at[GGUF.name], at[VIDEO_VAE.name], at[AUDIO_VAE.name])
    core = write_core_compatible_checkpoint(at[CORE_CHECKPOINT.name], Version.LTX23, seed=seed + 1)
    write_tiny_lora(at[CORE_LORA.name], core, seed=seed + 7)
    write_tiny_gemma_file(at[CORE_GEMMA.name], seed=seed)
    write_tiny_lora(at[IC_LORA.name], load_file(str(at[CHECKPOINT.name])), seed=seed + 11,
                    metadata={"reference_downscale_factor": str(IC_LORA_FACTOR)})


def write_tiny_set(models: str | os.PathLike, seed: int = 0, *, overwrite: bool = False) -> list[Path]:
    """Write :data:`TINY_SET` under ``models`` (laid out like ``ComfyUI/models``: ``checkpoints/``,
    ``text_encoders/`` …), in float32, and return the paths written in :data:`TINY_SET` order. The parts fit
    together: the Gemma width matches the checkpoints' text projection, the upsampler the checkpoint's latent
    channels, the GGUF and VAE files are the checkpoint split, the LoRA targets the core-compatible checkpoint, the
    IC-LoRA the distilled checkpoint.

    The files are written into a hidden folder inside ``models`` first and moved into place when all are done, so
    an error or Ctrl-C leaves no partial file behind.

    Raises:
        InputError: ``models`` is a file; a file of the set already exists there and ``overwrite`` is False (so a
            real model of the same name, e.g. in ``ComfyUI/models``, is never replaced by accident).
    """
    root = Path(models)
    if root.exists() and not root.is_dir():
        raise InputError(f"tiny --set: {root} is a file; give a folder (it gets ComfyUI's model folders).")
    existing = [f.path for f in TINY_SET if (root / f.folder / f.name).exists()]
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise InputError(f"tiny --set: {shown} already exist under {root}; choose an empty folder, or pass "
                         "--overwrite to replace them with tiny random ones.")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".rs-ltxv-tiny-", dir=root))
    try:
        _write_set(staging, seed)
        for f in TINY_SET:
            (root / f.folder).mkdir(exist_ok=True)
            os.replace(staging / f.folder / f.name, root / f.folder / f.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [root / f.folder / f.name for f in TINY_SET]
