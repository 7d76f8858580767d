"""What ``python -m rs_ltxv info FILE`` reports: version, config, parameter counts and dtypes per component."""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from .checkpoint import check_quantisation, open_checkpoint, open_file
from .info_parts import PART_KINDS, describe_part, format_details, text_encoder_of, video_decoder_kind
from .layout import strip_diffusion_prefix
from .quant_plan import format_counts

__all__ = ["PART_KINDS", "describe", "describe_parts_file", "format_description"]


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON-able description of an LTX-2 checkpoint (``.safetensors`` or ``.gguf``): file, size, version
    (LTX-2 / 2.3 / 2.5), ``model_version``, the Gemma version it expects (``gemma_source_checkpoint``; None when the
    file does not say) and ``text_encoder`` (Gemma-3 or Gemma-4, the files to use), whether it is distilled, where
    the config came from, per-component tensor/parameter/byte counts and dtypes, ``video_decoder`` ("diffusion",
    "vae" or None) and the transformer config. A file without a transformer is described by
    :func:`describe_parts_file`.

    Raises:
        CheckpointError: see :func:`~.checkpoint.open_checkpoint`, for a file that has a transformer (an LTX-2.5
            file without its ``keyframes_abs_pos_embedding``, for one, is refused with what is missing).
    """
    try:
        ckpt = open_checkpoint(path)
    except CheckpointError as exc:
        try:
            keys = list(open_file(Path(path)).tensors)
        except CheckpointError:
            raise exc from None
        if "patchify_proj.weight" in {strip_diffusion_prefix(k) for k in keys}:
            raise
        return describe_parts_file(path)
    try:
        check_quantisation(ckpt)
        problem = None
    except CheckpointError as exc:
        problem = str(exc)
    try:
        gemma_version = ckpt.model_version_info.gemma_version
    except CheckpointError as exc:
        gemma_version = f"unreadable: {exc}"
    components: dict[str, Any] = {}
    for name, names in sorted(ckpt.components.items()):
        infos = [ckpt.file.tensors[k] for k in names.values()]
        components[name] = {
            "tensors": len(infos),
            "parameters": sum(math.prod(i.shape) for i in infos),
            "bytes": sum(i.nbytes for i in infos),
            "dtypes": dict(Counter(i.dtype for i in infos)),
        }
    return {
        "file": str(ckpt.path),
        "size_bytes": ckpt.file.size,
        "version": ckpt.version.display,
        "model_version": ckpt.model_version,
        "gemma_version": gemma_version,
        "text_encoder": text_encoder_of(ckpt),
        "distilled": ckpt.is_distilled,
        "config_source": ckpt.config_source,
        "components": components,
        "video_decoder": video_decoder_kind(list(ckpt.file.tensors)) if "vae" in ckpt.components else None,
        "quantisation": format_counts(ckpt.file),
        "quantisation_error": problem,
        "transformer_config": ckpt.config.summary(),
    }


def describe_parts_file(path: str | os.PathLike) -> dict[str, Any]:
    """Like :func:`describe` for a file without a transformer (a split VAE, audio VAE, upsampler, LoRA, Gemma or
    duration-head file): what it holds, told by its tensor names and refined from its header
    (:func:`~.info_parts.describe_part`: which video decoder, the Gemma-4 bundle's version and size, the duration
    head's config; ``details``), the model version when the part is version-specific, with tensor/parameter/byte
    counts and dtypes.

    Raises:
        CheckpointError: the file is unreadable (see :func:`~.checkpoint.open_file`).
    """
    file = open_file(Path(path))
    kind, version, details = describe_part(path, file)
    infos = list(file.tensors.values())
    metadata = file.metadata
    source = "metadata" if "config" in metadata else "metadata (gemma_config)" if "gemma_config" in metadata \
        else "none"
    model_version = metadata.get("model_version")
    return {
        "file": str(path), "size_bytes": Path(path).stat().st_size, "version": version,
        "model_version": str(model_version) if model_version is not None else None,
        "distilled": None, "config_source": source, "holds": kind, "details": details,
        "quantisation": format_counts(file),
        "components": {kind: {"tensors": len(infos), "parameters": sum(math.prod(i.shape) for i in infos),
                              "bytes": sum(i.nbytes for i in infos), "dtypes": dict(Counter(i.dtype for i in infos))}},
        "transformer_config": None,
    }


def format_description(d: dict[str, Any]) -> str:
    """Human-readable text of :func:`describe` / :func:`describe_parts_file`."""
    if d.get("transformer_config") is None:
        c = next(iter(d["components"].values()))
        dtypes = ", ".join(f"{k}×{v}" for k, v in sorted(c["dtypes"].items()))
        return "\n".join([
            f"file:          {d['file']} ({d['size_bytes'] / 2**20:.1f} MiB)",
            f"holds:         {d['holds']} (no transformer: not a checkpoint for --checkpoint)",
            *([f"version:       {d['version']}" + (f" (model_version {d['model_version']})" if d["model_version"]
                                                   else "")] if d.get("version") else []),
            f"config:        {d['config_source']}",
            *format_details(d.get("details") or {}),
            f"tensors:       {c['tensors']} ({c['parameters']:,} params, {c['bytes'] / 2**20:.1f} MiB) [{dtypes}]",
            *_quantisation_lines(d),
        ])
    lines = [
        f"file:          {d['file']} ({d['size_bytes'] / 2**20:.1f} MiB)",
        f"version:       {d['version']}" + (f" (model_version {d['model_version']})" if d["model_version"] else "")
        + (", distilled" if d.get("distilled") else ""),
        *_text_encoder_lines(d),
        *([f"video decoder: {_DECODERS[d['video_decoder']]}"] if d.get("video_decoder") else []),
        f"config:        from {d['config_source']}",
        *_quantisation_lines(d),
        "components:",
    ]
    for name, c in d["components"].items():
        dtypes = ", ".join(f"{k}×{v}" for k, v in sorted(c["dtypes"].items()))
        lines.append(f"  {name:<16} {c['parameters']:>16,} params  {c['bytes'] / 2**20:>10.1f} MiB  "
                     f"{c['tensors']:>5} tensors  [{dtypes}]")
    cfg = d["transformer_config"]
    lines.append("transformer:")
    keys = ("num_layers", "num_attention_heads", "attention_head_dim", "audio_num_attention_heads",
            "audio_attention_head_dim", "in_channels", "audio_in_channels", "caption_channels", "rope_layout",
            "double_precision_rope", "apply_gated_attention", "cross_attention_adaln", "caption_proj_before_connector",
            "ff_bias", "use_keyframes_abs_pos_embedding")
    lines.extend(f"  {k:<32} {cfg[k]}" for k in keys)
    for name in ("video_connector", "audio_connector"):
        c = cfg[name]
        lines.append(f"  {name:<32} {c['num_layers']} layers, {c['num_attention_heads']}×{c['attention_head_dim']}, "
                     f"{c['num_learnable_registers']} registers, gated={c['apply_gated_attention']}")
    return "\n".join(lines)


_DECODERS = {"diffusion": "diffusion (LTX-2.5's native decoder)", "vae": "convolutional"}


def _text_encoder_lines(d: dict[str, Any]) -> list[str]:
    """``text encoder:  Gemma-4 (gemma_version …): <files>`` / ``Gemma-3 12B: <files>``."""
    te = d.get("text_encoder") or {}
    if "gemma" not in te:
        return [f"text encoder:  Gemma {d['gemma_version']}"] if d.get("gemma_version") else []
    name = "Gemma-4" if te["gemma"] == 4 else "Gemma-3 12B"
    version = f" (gemma_version {te['gemma_version']})" if te.get("gemma_version") else ""
    return [f"text encoder:  {name}{version}: {te['files']}"]


def _quantisation_lines(d: dict[str, Any]) -> list[str]:
    """``quantised: <format>×<Linear weights>, …`` when the file keeps Linear weights quantised (FP8 / INT8 / NVFP4,
    loaded as ``QuantLinear``), nothing otherwise."""
    counts = d.get("quantisation") or {}
    if not counts:
        return []
    return ["quantised:     " + ", ".join(f"{k}×{v}" for k, v in sorted(counts.items()))
            + " Linear weights (kept quantised when loaded)"]
