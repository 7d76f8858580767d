"""What ``python -m rs_ltxv info`` says about a model-part file beyond its tensor counts, and about a checkpoint's
text encoder and video decoder: the LTX-2.5 parts (the duration head, the two video VAE files — diffusion or
convolutional decoder —, the bundled Gemma-4 text encoder) and the Gemma-3 / convolutional files of LTX-2 / 2.3.

Everything is read from headers (names, shapes, dtypes, metadata); no weight is loaded. A part that cannot be
described (a damaged header section, a config that does not parse) gets a ``problem`` entry instead of raising, so
``info`` still shows what the file holds.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ConfigError
from .safetensors_file import SafetensorsFile

#: kinds of model-part files, told from tensor names alone (first match wins; :func:`describe_part` refines them)
PART_KINDS: tuple[tuple[str, Any], ...] = (
    ("LoRA", lambda keys: any(".lora_" in k or "lora_down" in k or "lora_A" in k for k in keys)),
    ("LTX-2.5 duration head", lambda keys: any(k.startswith("duration_head.") for k in keys)),
    ("Gemma-4 text encoder (LTX-2.5)", lambda keys: "tokenizer_json" in keys or any(
        k.endswith(".layer_scalar") for k in keys)),
    ("Gemma text encoder", lambda keys: any("embed_tokens" in k for k in keys)),
    ("latent upsampler", lambda keys: any(k.startswith(("initial_conv.", "upsampler.")) for k in keys)),
    ("audio VAE + vocoder", lambda keys: any(k.startswith(("audio_vae.", "vocoder.")) for k in keys)),
    ("video VAE", lambda keys: any(k.startswith(("vae.", "encoder.", "decoder.")) for k in keys)),
)
UNKNOWN = "unknown (not an LTX model part)"
GEMMA3 = "Gemma text encoder (Gemma-3 12B, for LTX-2 / LTX-2.3)"
GEMMA4 = PART_KINDS[2][0]
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")
_QUANT_SUFFIXES = (".weight_scale", ".scale_weight", ".comfy_quant")


def part_kind(keys: list[str]) -> str:
    """The :data:`PART_KINDS` name for a file with tensors ``keys`` (:data:`UNKNOWN` when none fits)."""
    return next((name for name, test in PART_KINDS if test(keys)), UNKNOWN)


def video_decoder_kind(keys: list[str]) -> str | None:
    """``"diffusion"`` (LTX-2.5's diffusion decoder), ``"vae"`` (the convolutional one) or None, from the names of a
    file's (or a checkpoint's) tensors."""
    from .diffusion_decoder import diffusion_decoder_prefix

    if diffusion_decoder_prefix(keys) is not None:
        return "diffusion"
    return "vae" if any(k.startswith(("vae.decoder.", "decoder.")) for k in keys) else None


def _problem(exc: Exception) -> dict[str, Any]:
    return {"problem": str(exc)}


def _video_vae(path: Path, file: Any) -> tuple[str, str | None, dict[str, Any]]:
    keys = list(file.tensors)
    decoder = video_decoder_kind(keys)
    encoder = any(k.startswith(("vae.encoder.", "encoder.")) for k in keys)
    names = {"diffusion": "LTX-2.5 diffusion decoder", "vae": "convolutional decoder"}
    parts = (["encoder"] if encoder else []) + ([names[decoder]] if decoder else [])
    holds = "video VAE: " + (" + ".join(parts) if parts else "no encoder or decoder")
    details: dict[str, Any] = {"decoder": decoder, "encoder": encoder}
    if decoder == "diffusion":
        from .diffusion_decoder import open_diffusion_decoder

        try:
            cfg = open_diffusion_decoder(path).config
        except CheckpointError as exc:
            return holds, "LTX-2.5", {**details, **_problem(exc)}
        details.update(stages=len(cfg.stage_channels), widths=list(cfg.stage_channels), steps=cfg.num_inference_steps,
                       output=cfg.model_output_type,
                       use="LTX-2.5's native decoder (generate --decoder auto / diffusion)")
        return holds, "LTX-2.5", details
    if decoder == "vae":
        details["use"] = ("the convolutional decoder of LTX-2 / LTX-2.3, or LTX-2.5's ltx-2.5-video-vae-conv file "
                          "(--decoder vae)")
    return holds, None, details


def _quantised_layers(file: Any) -> set[int]:
    """Decoder layers with a quantised Linear weight (a scale tensor, a ``comfy_quant`` entry or an FP8 dtype)."""
    out = set()
    for key, info in file.tensors.items():
        match = _LAYER.search(key)
        if match and (key.endswith(_QUANT_SUFFIXES) or str(info.dtype).startswith("F8")):
            out.add(int(match.group(1)))
    return out


def _gemma4(path: Path, file: Any) -> tuple[str, str | None, dict[str, Any]]:
    from .gemma4 import open_gemma4

    try:
        bundle = open_gemma4(path)
    except CheckpointError as exc:
        return GEMMA4, "LTX-2.5", _problem(exc)
    cfg = bundle.config
    quantised = _quantised_layers(file)
    projection = sorted({n.partition(".")[0] for n in bundle.projection[1]}) if bundle.projection else []
    return GEMMA4, "LTX-2.5", {
        "gemma_version": cfg.gemma_version, "layers": cfg.num_hidden_layers, "hidden_size": cfg.hidden_size,
        "heads": f"{cfg.num_attention_heads} (key/value {cfg.num_key_value_heads})",
        "tokenizer": "inside (tokenizer_json)" if isinstance(bundle.tokenizer, SafetensorsFile) else
        str(bundle.tokenizer),
        "projection": ("text_embedding_projection: " + ", ".join(projection)) if projection else
        "none (the connectors' projection must come from elsewhere)",
        "quantised_layers": f"{len(quantised)} of {cfg.num_hidden_layers}" if quantised else "none (float weights)",
    }


def _duration_head(path: Path, file: Any) -> tuple[str, str | None, dict[str, Any]]:
    from .duration_head import _shape_fields, config_from_metadata, duration_head_names

    tensors = {m: file.tensors[k] for m, k in duration_head_names(file.tensors).items()}
    try:
        raw = file.config() or {}
        source = "metadata" if any(s in raw for s in ("transformer", "duration_head")) else "tensor shapes"
        cfg = config_from_metadata(raw, _shape_fields(tensors))
    except (CheckpointError, ConfigError) as exc:
        return PART_KINDS[1][0], "LTX-2.5", _problem(exc)
    return PART_KINDS[1][0], "LTX-2.5", {
        "settings": {**asdict(cfg), "from": source},
        "use": "clip length from the prompt (generate --frames auto / --duration-head, nodes num_frames 0); "
               "LTX-2.5 only",
    }


def _gemma3(path: Path, file: Any) -> tuple[str, str | None, dict[str, Any]]:
    from .gemma4 import is_gemma4

    if is_gemma4(path):
        return _gemma4(path, file)
    return GEMMA3, None, {}


DETAILS = {"video VAE": _video_vae, GEMMA4: _gemma4, "Gemma text encoder": _gemma3,
           PART_KINDS[1][0]: _duration_head}


def describe_part(path: str | os.PathLike, file: Any) -> tuple[str, str | None, dict[str, Any]]:
    """``(holds, version or None, details)`` of a model-part file opened as ``file`` (a ``SafetensorsFile`` or a GGUF
    file): the :data:`PART_KINDS` kind refined from the header — which decoder a video VAE holds, a Gemma-4 bundle's
    version / size / tokenizer / projection / quantised layers, a duration head's config. GGUF files get the kind
    alone."""
    kind = part_kind(list(file.tensors))
    detail = DETAILS.get(kind)
    if detail is None or Path(path).suffix.lower() == ".gguf":
        return kind, None, {}
    return detail(Path(path), file)


def text_encoder_of(ckpt: Any) -> dict[str, Any]:
    """Which Gemma an :class:`~.checkpoint.LTXCheckpoint` needs: ``{"gemma": 3 | 4, "gemma_version": … | None,
    "files": the file names to use}`` (``{"problem": …}`` for an unreadable ``gemma_source_checkpoint``)."""
    from .gemma4_parts import GEMMA3_FILES, GEMMA4_FILES, needed_gemma

    try:
        needs4, version, _what = needed_gemma(ckpt)
    except CheckpointError as exc:
        return _problem(exc)
    return {"gemma": 4 if needs4 else 3, "gemma_version": version, "files": GEMMA4_FILES if needs4 else GEMMA3_FILES}


def format_details(details: dict[str, Any]) -> list[str]:
    """``label: value`` lines of :func:`describe_part`'s details (nested dicts as ``k=v`` lists)."""
    lines = []
    for key, value in details.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif value is None:
            value = "none"
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        label = key.replace("_", " ") + ":"
        lines.append(f"{label:<14} {value}")
    return lines
