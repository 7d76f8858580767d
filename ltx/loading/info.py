"""What ``python -m rs_ltxv info FILE`` reports: version, config, parameter counts and dtypes per component."""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from .checkpoint import check_quantisation, open_checkpoint, open_file
from .quant_plan import format_counts


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON-able description of an LTX-2 checkpoint (``.safetensors`` or ``.gguf``): file, size, version
    (LTX-2 / 2.3 / 2.5), ``model_version``, the Gemma version it expects (``gemma_source_checkpoint``; None when the
    file does not say), whether it is distilled, where the config came from, per-component tensor/parameter/byte
    counts and dtypes, and the transformer config.

    Raises:
        CheckpointError: see :func:`~.checkpoint.open_checkpoint`.
    """
    try:
        ckpt = open_checkpoint(path)
    except CheckpointError as exc:
        if "not an LTX-2 / LTX-2.3 checkpoint" not in str(exc):
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
        "distilled": ckpt.is_distilled,
        "config_source": ckpt.config_source,
        "components": components,
        "quantisation": format_counts(ckpt.file),
        "quantisation_error": problem,
        "transformer_config": ckpt.config.summary(),
    }


#: what a file without a transformer holds, told by its tensor names (first match wins)
PART_KINDS: tuple[tuple[str, Any], ...] = (
    ("LoRA", lambda keys: any(".lora_" in k or "lora_down" in k or "lora_A" in k for k in keys)),
    ("Gemma text encoder", lambda keys: any("embed_tokens" in k for k in keys)),
    ("latent upsampler", lambda keys: any(k.startswith(("initial_conv.", "upsampler.")) for k in keys)),
    ("audio VAE + vocoder", lambda keys: any(k.startswith(("audio_vae.", "vocoder.")) for k in keys)),
    ("video VAE", lambda keys: any(k.startswith(("vae.", "encoder.", "decoder.")) for k in keys)),
)


def describe_parts_file(path: str | os.PathLike) -> dict[str, Any]:
    """Like :func:`describe` for a file without a transformer (a split VAE, audio VAE, upsampler, LoRA or Gemma
    file): what it holds, told by its tensor names, with tensor/parameter/byte counts and dtypes.

    Raises:
        CheckpointError: the file is unreadable (see :func:`~.checkpoint.open_file`).
    """
    file = open_file(Path(path))
    keys = list(file.tensors)
    kind = next((name for name, test in PART_KINDS if test(keys)), "unknown (not an LTX model part)")
    infos = list(file.tensors.values())
    return {
        "file": str(path), "size_bytes": Path(path).stat().st_size, "version": None, "model_version": None,
        "distilled": None, "config_source": "metadata" if "config" in file.metadata else "none",
        "holds": kind, "quantisation": format_counts(file),
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
            f"config:        {d['config_source']}",
            f"tensors:       {c['tensors']} ({c['parameters']:,} params, {c['bytes'] / 2**20:.1f} MiB) [{dtypes}]",
            *_quantisation_lines(d),
        ])
    lines = [
        f"file:          {d['file']} ({d['size_bytes'] / 2**20:.1f} MiB)",
        f"version:       {d['version']}" + (f" (model_version {d['model_version']})" if d["model_version"] else "")
        + (", distilled" if d.get("distilled") else ""),
        *([f"text encoder:  Gemma {d['gemma_version']}"] if d.get("gemma_version") else []),
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


def _quantisation_lines(d: dict[str, Any]) -> list[str]:
    """``quantised: <format>×<Linear weights>, …`` when the file keeps Linear weights quantised (FP8 / INT8 / NVFP4,
    loaded as ``QuantLinear``), nothing otherwise."""
    counts = d.get("quantisation") or {}
    if not counts:
        return []
    return ["quantised:     " + ", ".join(f"{k}×{v}" for k, v in sorted(counts.items()))
            + " Linear weights (kept quantised when loaded)"]
