"""Tiny random-weight LTX-2 / LTX-2.3 / LTX-2.5 checkpoints in the official single-file format (no downloads needed).

Used by the README's first command, by ``python -m rs_ltxv tiny`` and by tests. Same architecture and key names as
the released models, just narrow and shallow.

:func:`write_tiny_set` writes every model file the example workflows name (:data:`TINY_SET`), tiny, under the
official file names in ComfyUI's model-folder layout, so the examples run without downloads: the full checkpoint,
its GGUF + split-VAE form (:func:`split_checkpoint`), a Gemma-3 text encoder in ComfyUI's single-file layout, the
latent upsampler, and for the example that uses ComfyUI's own loaders a checkpoint those loaders accept
(:func:`write_core_compatible_checkpoint`) with a LoRA, and the IC-LoRA example's control LoRA (its
``reference_downscale_factor`` metadata included); the LTX-2.5 files as Lightricks ships them, plus the
convolutional-decoder VAE file the examples leave for the diffusion-decoder one. Every file gets the umask's
permissions, like any new file (:func:`~.pipeline.output_file.save_safetensors`).
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
from .loading.layout import GEMMA4_LTX_VERSION, GEMMA_SOURCE_KEY
from .pipeline.output_file import save_safetensors
from .random_weights import random_init
from .text.processor import TextConnectors
from .transformer.model import LTXAVTransformer

__all__ = ["TINY_GEMMA_DIM", "TINY_GEMMA_STATES", "TINY_SET", "TINY_SETS", "TINY_SET_23", "TINY_SET_25", "TinyFile",
           "random_init", "split_checkpoint", "tiny_config", "tiny_state_dict", "write_core_compatible_checkpoint",
           "write_tiny_checkpoint", "write_tiny_set"]

TINY_GEMMA_DIM = 24
TINY_GEMMA_STATES = 3


def tiny_config(version: Version | str = Version.LTX23, *, layers: int = 2, latent_channels: int = 128,
                audio_channels: int = 8) -> TransformerConfig:
    """A tiny config of the given layout: video 2×16, audio 2×8, text width 24; latent channels as given
    (the real models: 128 video, 8 audio × 16 mel bins). "2.5": the 2.3 layout with ``ff_bias`` off and the keyframe
    embedding on.

    Raises:
        ConfigError: ``version`` is not "2.0" / "2.3" / "2.5" (a :class:`Version`).
    """
    try:
        version = Version(version)
    except ValueError:
        raise ConfigError(f"Unknown LTX version {version!r}; choose one of: "
                          f"{', '.join(v.value for v in Version)}.") from None
    v23 = version in (Version.LTX23, Version.LTX25)  # the 2.3 layout, which 2.5 extends
    v25 = version is Version.LTX25
    base = TransformerConfig(
        num_layers=layers, num_attention_heads=2, attention_head_dim=16, cross_attention_dim=32,
        audio_num_attention_heads=2, audio_attention_head_dim=8, audio_cross_attention_dim=16,
        in_channels=latent_channels, out_channels=latent_channels, audio_in_channels=audio_channels * 16,
        audio_out_channels=audio_channels * 16, caption_channels=TINY_GEMMA_DIM,
        apply_gated_attention=v23, cross_attention_adaln=v23, caption_proj_before_connector=v23,
        ff_bias=not v25, use_keyframes_abs_pos_embedding=v25,
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
    Metadata: ``config`` and ``model_version`` ("2.0.0-tiny", "2.3.0-tiny"; "2.5.0" as the official LTX-2.5 file,
    which also names its Gemma: ``gemma_source_checkpoint`` ``{"gemma_version": "gemma4-12b-ltx-v1"}``).

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
    version = Version(version)
    meta = {"config": json.dumps(config), "model_version": f"{version.value}.0-tiny"}
    if version is Version.LTX25:
        meta.update(model_version="2.5.0", **{GEMMA_SOURCE_KEY: json.dumps({"gemma_version": GEMMA4_LTX_VERSION})})
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

#: LTX-2.5 as Lightricks publishes it (Lightricks/LTX-2.5: one file per component, ComfyUI's folder names)
LTX25_TRANSFORMER = TinyFile("diffusion_models", "ltx-2.5-22b-distilled-transformer-bf16.safetensors",
                             "LTX-2.5 distilled transformer + text connectors, float32")
LTX25_GEMMA = TinyFile("text_encoders", "gemma4-12b-with-proj-ltx-2.5-bf16.safetensors",
                       "Gemma-4 text encoder bundled with its text projection, tokenizer inside")
LTX25_VIDEO_VAE = TinyFile("vae", "ltx-2.5-video-vae-bf16.safetensors",
                           "LTX-2.5 video VAE: encoder + diffusion decoder")
LTX25_VIDEO_VAE_CONV = TinyFile("vae", "ltx-2.5-video-vae-conv-bf16.safetensors",
                                "LTX-2.5 video VAE: encoder + convolutional decoder")
LTX25_AUDIO_VAE = TinyFile("vae", "ltx-2.5-audio-vae-bf16.safetensors", "LTX-2.5 audio VAE and vocoder")
LTX25_UPSAMPLER = TinyFile("latent_upscale_models", "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors",
                           "2x spatial latent upsampler")
LTX25_DURATION_HEAD = TinyFile("model_patches", "ltx-2.5-duration-head-bf16.safetensors",
                               "duration head (clip length from the prompt)")

#: the LTX-2.3 files of the set (``tiny DIR --set --version 2.3``)
TINY_SET_23: tuple[TinyFile, ...] = (CHECKPOINT, GEMMA, UPSAMPLER, GGUF, VIDEO_VAE, AUDIO_VAE, CORE_CHECKPOINT,
                                     CORE_LORA, CORE_GEMMA, IC_LORA)
#: the LTX-2.5 files of the set (``tiny DIR --set --version 2.5``); the examples use the diffusion-decoder VAE, the
#: conv-decoder one is the alternative the VAE loader offers
TINY_SET_25: tuple[TinyFile, ...] = (LTX25_TRANSFORMER, LTX25_GEMMA, LTX25_VIDEO_VAE, LTX25_VIDEO_VAE_CONV,
                                     LTX25_AUDIO_VAE, LTX25_UPSAMPLER, LTX25_DURATION_HEAD)
#: every file :func:`write_tiny_set` writes, in that order
TINY_SET: tuple[TinyFile, ...] = TINY_SET_23 + TINY_SET_25
#: ``version`` of :func:`write_tiny_set` → its files
TINY_SETS: dict[str, tuple[TinyFile, ...]] = {"2.3": TINY_SET_23, "2.5": TINY_SET_25, "all": TINY_SET}


def _write_set_25(root: Path, seed: int) -> None:
    """The LTX-2.5 files: a full tiny 2.5 checkpoint split the way Lightricks ships 2.5 (transformer + connectors,
    video VAE, audio VAE + vocoder; the text projection lives in the Gemma-4 file), the diffusion-decoder VAE, the
    bundled Gemma-4, the spatial upsampler and the duration head, all for 16 latent channels. (The temporal
    upsampler, which no example uses, is ``tiny_parts.write_tiny_temporal_upsampler``.)"""
    from safetensors import safe_open

    from .tiny_gemma4 import write_tiny_gemma4
    from .tiny_parts import write_tiny_duration_head, write_tiny_upsampler
    from .video_vae.diffusion.tiny import write_tiny_diffusion_decoder

    at = {f.name: root / f.folder / f.name for f in TINY_SET_25}
    whole = root / "ltx-2.5-full.safetensors"
    write_tiny_checkpoint(whole, Version.LTX25, seed=seed, dtype=torch.float32, full=True)
    with safe_open(str(whole), "pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    whole.unlink()
    config = json.loads(meta["config"])
    groups = {LTX25_VIDEO_VAE_CONV.name: (("vae.",), ("vae",)),
              LTX25_AUDIO_VAE.name: (("audio_vae.", "vocoder."), ("audio_vae", "vocoder"))}
    for name, (prefixes, sections) in groups.items():
        part = {k: v for k, v in tensors.items() if k.startswith(prefixes)}
        at[name].parent.mkdir(parents=True, exist_ok=True)
        save_safetensors(part, str(at[name]), metadata={"config": json.dumps({s: config[s] for s in sections})})
    skip = ("vae.", "audio_vae.", "vocoder.", "text_embedding_projection.")
    transformer = {k: v for k, v in tensors.items() if not k.startswith(skip)}
    at[LTX25_TRANSFORMER.name].parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(transformer, str(at[LTX25_TRANSFORMER.name]),
                     metadata={**meta, "config": json.dumps({"transformer": config["transformer"]})})
    write_tiny_gemma4(at[LTX25_GEMMA.name], seed=seed)
    write_tiny_diffusion_decoder(at[LTX25_VIDEO_VAE.name], latent_channels=16, seed=seed + 3)
    write_tiny_upsampler(at[LTX25_UPSAMPLER.name], channels=16, seed=seed + 5)
    cfg = tiny_config(Version.LTX25)
    write_tiny_duration_head(at[LTX25_DURATION_HEAD.name], video_dim=cfg.cross_attention_dim,
                             audio_dim=cfg.audio_cross_attention_dim, seed=seed + 8)


def _write_set(root: Path, seed: int) -> None:
    from safetensors.torch import load_file

    from .tiny_parts import write_tiny_gemma_file, write_tiny_lora, write_tiny_upsampler

    at = {f.name: root / f.folder / f.name for f in TINY_SET_23}
    write_tiny_checkpoint(at[CHECKPOINT.name], Version.LTX23, seed=seed, dtype=torch.float32, full=True)
    write_tiny_gemma_file(at[GEMMA.name], seed=seed)
    write_tiny_upsampler(at[UPSAMPLER.name], channels=16, seed=seed + 5)
    split_checkpoint(at[CHECKPOINT.name], at[GGUF.name], at[VIDEO_VAE.name], at[AUDIO_VAE.name])
    core = write_core_compatible_checkpoint(at[CORE_CHECKPOINT.name], Version.LTX23, seed=seed + 1)
    write_tiny_lora(at[CORE_LORA.name], core, seed=seed + 7)
    write_tiny_gemma_file(at[CORE_GEMMA.name], seed=seed)
    write_tiny_lora(at[IC_LORA.name], load_file(str(at[CHECKPOINT.name])), seed=seed + 11,
                    metadata={"reference_downscale_factor": str(IC_LORA_FACTOR)})


def _files_to_write(root: Path, version: str, overwrite: bool) -> tuple[TinyFile, ...]:
    """The files of ``version``'s set to write under ``root``: all of them with ``overwrite``; otherwise each model
    version's files (:data:`TINY_SET_23`, :data:`TINY_SET_25`) when none of them is there yet, none when every one
    is (``version`` "all" only: a folder that already holds the other version's set gets the missing one; nothing
    is replaced).

    Raises:
        InputError: without ``overwrite``, some of a version's files exist (or, for "all", every file does).
    """
    groups = {"2.3": TINY_SET_23, "2.5": TINY_SET_25}
    groups = groups if version == "all" else {version: groups[version]}
    if overwrite:
        return tuple(f for files in groups.values() for f in files)
    present = {v: [f.path for f in files if (root / f.folder / f.name).exists()] for v, files in groups.items()}
    complete = [v for v, files in groups.items() if len(present[v]) == len(files)]
    clash = [p for v, paths in present.items() if v not in complete or version != "all" for p in paths]
    if clash or len(complete) == len(groups):
        clash = clash or [p for paths in present.values() for p in paths]
        shown = ", ".join(clash[:3]) + (f" and {len(clash) - 3} more" if len(clash) > 3 else "")
        free = [v for v in groups if not present[v]]
        hint = "".join(f"give --version {v} to add only the LTX-{v} files, or " for v in free)
        raise InputError(f"tiny --set: {shown} already exist under {root}; {hint}choose an empty folder, or pass "
                         "--overwrite to replace them with tiny random ones.")
    return tuple(f for v, files in groups.items() if v not in complete for f in files)


def write_tiny_set(models: str | os.PathLike, seed: int = 0, *, overwrite: bool = False,
                   version: str = "all") -> list[Path]:
    """Write :data:`TINY_SET` (``version`` "2.3" / "2.5": only :data:`TINY_SET_23` / :data:`TINY_SET_25`) under
    ``models`` (laid out like ``ComfyUI/models``: ``checkpoints/``, ``text_encoders/`` …), in float32, and return the
    paths written in that order. The parts fit together: the Gemma width matches the checkpoints' text projection,
    the upsampler the checkpoint's latent channels, the GGUF and VAE files are the checkpoint split, the LoRA targets
    the core-compatible checkpoint, the IC-LoRA the distilled checkpoint; the LTX-2.5 files are one tiny 2.5 model
    split as Lightricks ships it, with its Gemma-4, diffusion decoder, upsamplers and duration head.

    Nothing is replaced unless ``overwrite``: with ``version`` "all", a model version whose files are all there
    already (e.g. from ``--set --version 2.5``) is kept and only the other version's files are written (the two sets
    share no file name); any other existing file of the set stops the call.

    The files are written into a hidden folder inside ``models`` first and moved into place when all are done, so
    an error or Ctrl-C leaves no partial file behind.

    Raises:
        InputError: ``models`` is a file; files of the set already exist there (above) and ``overwrite`` is False (so
            a real model of the same name, e.g. in ``ComfyUI/models``, is never replaced by accident; the message
            names ``--version`` when the other version's files could still be added); an unknown ``version``.
    """
    if version not in TINY_SETS:
        raise InputError(f"tiny --set: no tiny set for version {version!r}; choose 2.3 or 2.5 (or none: both).")
    root = Path(models)
    if root.exists() and not root.is_dir():
        raise InputError(f"tiny --set: {root} is a file; give a folder (it gets ComfyUI's model folders).")
    files = _files_to_write(root, version, overwrite)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".rs-ltxv-tiny-", dir=root))
    try:
        if any(f in TINY_SET_23 for f in files):
            _write_set(staging, seed)
        if any(f in TINY_SET_25 for f in files):
            _write_set_25(staging, seed)
        for f in files:
            (root / f.folder).mkdir(exist_ok=True)
            os.replace(staging / f.folder / f.name, root / f.folder / f.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [root / f.folder / f.name for f in files]
