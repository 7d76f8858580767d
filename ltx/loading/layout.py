"""Where each component lives in LTX-2 checkpoint files, telling LTX-2 / 2.3 / 2.5 apart (and from foreign files),
and what a checkpoint's metadata says about its version and the Gemma it was trained with (:func:`read_model_version`).

Prefixes of the official single files (ComfyUI's split files use the same names, with or without the
``model.diffusion_model.`` prefix for the diffusion model):

==============================  ================================================================
``model.diffusion_model.``      transformer; ``{video,audio}_embeddings_connector.`` inside it
``text_embedding_projection.``  feature extractor (``aggregate_embed`` / ``{video,audio}_aggregate_embed``)
``vae.``, ``audio_vae.``,       video VAE, audio VAE, vocoder
``vocoder.``
==============================  ================================================================
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import Version
from ..errors import CheckpointError
from .config_json import parse_config_text
from .gguf_checkpoint import GGUFCheckpointFile
from .safetensors_file import SafetensorsFile

DIFFUSION_PREFIX = "model.diffusion_model."
CONNECTOR_PREFIXES = {
    "video_connector": "video_embeddings_connector.",
    "audio_connector": "audio_embeddings_connector.",
}
PROJECTION_PREFIX = "text_embedding_projection."
OTHER_COMPONENTS = ("vae.", "audio_vae.", "vocoder.", "duration_head.")

# Substrings that identify other model families, for a helpful error.
FOREIGN_HINTS: tuple[tuple[str, str], ...] = (
    ("double_blocks.", "a Flux model"),
    ("input_blocks.", "a Stable Diffusion UNet"),
    ("joint_blocks.", "a Stable Diffusion 3 model"),
    ("blocks.0.cross_attn.", "a Wan model"),
    ("layers.0.self_attn.q_proj", "a language model (a text encoder, not the LTX checkpoint)"),
    ("lora_A", "a LoRA (load it with a LoRA loader, not as a checkpoint)"),
    ("lora_down", "a LoRA (load it with a LoRA loader, not as a checkpoint)"),
)


def strip_diffusion_prefix(key: str) -> str:
    """``key`` without a leading ``model.diffusion_model.`` (other keys unchanged), as
    ``ltx_core.model.transformer.model_configurator.LTXV_MODEL_COMFY_RENAMING_MAP`` does."""
    return key[len(DIFFUSION_PREFIX):] if key.startswith(DIFFUSION_PREFIX) else key


def split_components(keys: Iterable[str]) -> dict[str, dict[str, str]]:
    """Group file keys by component: ``{"transformer" | "video_connector" | "audio_connector" | "text_projection" |
    "vae" | "audio_vae" | "vocoder" | "duration_head": {module_name: file_key}}``. The prefixes are those of
    ltx-core's key filters (``LTXV_MODEL_COMFY_RENAMING_MAP``, ``EMBEDDINGS_PROCESSOR_KEY_OPS``,
    ``VAE_*_COMFY_KEYS_FILTER``, ``AUDIO_VAE_*_COMFY_KEYS_FILTER``, ``VOCODER_COMFY_KEYS_FILTER``)."""
    groups: dict[str, dict[str, str]] = {}
    for key in keys:
        top = next((p for p in OTHER_COMPONENTS if key.startswith(p)), None)
        if top is not None:
            groups.setdefault(top[:-1], {})[key[len(top):]] = key
            continue
        name = strip_diffusion_prefix(key)
        if name.startswith(PROJECTION_PREFIX):
            groups.setdefault("text_projection", {})[name[len(PROJECTION_PREFIX):]] = key
            continue
        for component, prefix in CONNECTOR_PREFIXES.items():
            if name.startswith(prefix):
                groups.setdefault(component, {})[name[len(prefix):]] = key
                break
        else:
            groups.setdefault("transformer", {})[name] = key
    return groups


def check_is_ltx2(path_name: str, keys: Iterable[str]) -> None:
    """Check that ``keys`` hold an LTX-2 / LTX-2.3 transformer (``patchify_proj`` and ``audio_patchify_proj``).

    Raises:
        CheckpointError: they do not; the message names what the file looks like (LTX-Video 0.9, Flux, a LoRA …).
    """
    names = {strip_diffusion_prefix(k) for k in keys}
    if "patchify_proj.weight" in names and "audio_patchify_proj.weight" in names:
        return
    if "patchify_proj.weight" in names:
        raise CheckpointError(f"{path_name} is an LTX-Video (0.9.x, video-only) checkpoint. RS-LTXV runs LTX-2 and "
                              "LTX-2.3 (audio-video) checkpoints such as ltx-2-19b-dev.safetensors.")
    for needle, what in FOREIGN_HINTS:
        if any(needle in k for k in names):
            raise CheckpointError(f"{path_name} looks like {what}, not an LTX-2 / LTX-2.3 checkpoint.")
    sample = ", ".join(sorted(names)[:5]) or "no tensors"
    raise CheckpointError(f"{path_name} is not an LTX-2 / LTX-2.3 checkpoint: it has no 'patchify_proj' and "
                          f"'audio_patchify_proj' tensors (first keys: {sample}).")


#: the LTX-2.5 keyframe absolute position embedding ``(1, D)`` (module name, without ``model.diffusion_model.``)
KEYFRAME_EMBEDDING = "keyframes_abs_pos_embedding"
#: the first video feed-forward bias, absent from LTX-2.5 files (``ff_bias`` false)
VIDEO_FF_BIAS = "transformer_blocks.0.ff.net.0.proj.bias"


def video_ff_bias_absent(transformer_keys: Iterable[str]) -> bool:
    """Whether the transformer's video feed-forward has weights but no biases (the LTX-2.5 layout)."""
    keys = set(transformer_keys)
    return "transformer_blocks.0.ff.net.0.proj.weight" in keys and VIDEO_FF_BIAS not in keys


def detect_version(transformer_keys: Iterable[str]) -> Version:
    """:attr:`Version.LTX25` when the transformer has the keyframe embedding or a video feed-forward without biases,
    else :attr:`Version.LTX23` when it has the prompt AdaLN or gated attention, else :attr:`Version.LTX2` (caption
    projections in the transformer). Names without the ``model.diffusion_model.`` prefix."""
    keys = set(transformer_keys)
    if KEYFRAME_EMBEDDING in keys or video_ff_bias_absent(keys):
        return Version.LTX25
    if "prompt_adaln_single.linear.weight" in keys or any(k.endswith("to_gate_logits.weight") for k in keys):
        return Version.LTX23
    return Version.LTX2


#: metadata key of the Gemma a checkpoint was trained with (a JSON object with ``gemma_version``), LTX-2.5 on
GEMMA_SOURCE_KEY = "gemma_source_checkpoint"
#: the ``gemma_version`` LTX-2.5 checkpoints name in :data:`GEMMA_SOURCE_KEY` (the LTX-finetuned Gemma-4 12B)
GEMMA4_LTX_VERSION = "gemma4-12b-ltx-v1"
#: ``model_version`` from which a checkpoint must declare :data:`GEMMA_SOURCE_KEY` (ltx-core 1.2.0
#: ``encoder_configurator._GEMMA_SOURCE_CHECKPOINT_REQUIRED_SINCE``)
GEMMA_SOURCE_REQUIRED_SINCE = (2, 4, 0)


def parse_model_version(text: str | None) -> tuple[int, ...]:
    """``model_version`` as comparable numbers: "2.5.0" → (2, 5, 0), "2.3.0-distilled" → (2, 3, 0), "2.4-rc2" →
    (2, 4); None, "" or a non-numeric start → () (below every version). Mirrors ltx-core 1.2.0
    ``loader.helpers.parse_model_version`` with ltx-pipelines' ``detect_model_version`` separator normalisation
    (``-`` read as ``.``)."""
    numbers: list[int] = []
    for part in (text or "").replace("-", ".").split("."):
        if not part.isdigit() or len(part) > 9:
            break
        numbers.append(int(part))
    return tuple(numbers)


@dataclass(frozen=True)
class ModelVersion:
    """What a checkpoint's metadata says about its generation.

    Attributes:
        model_version: the ``model_version`` metadata ("2.5.0", "2.3.0-distilled" …), None when absent.
        gemma_version: ``gemma_source_checkpoint.gemma_version`` ("gemma4-12b-ltx-v1" for LTX-2.5), None when absent.
    """

    model_version: str | None
    gemma_version: str | None

    @property
    def numbers(self) -> tuple[int, ...]:
        """:func:`parse_model_version` of :attr:`model_version`."""
        return parse_model_version(self.model_version)

    @property
    def is_ltx25(self) -> bool:
        """``model_version`` 2.5 or later."""
        return self.numbers >= (2, 5)

    @property
    def needs_gemma4(self) -> bool:
        """The checkpoint expects an LTX Gemma-4 text encoder: it names a ``gemma_version``, or its ``model_version``
        is at least :data:`GEMMA_SOURCE_REQUIRED_SINCE` (ltx-core then requires one). False: a Gemma-3 checkpoint
        (LTX-2, LTX-2.3), or one whose metadata does not say (tell by tensors then)."""
        return self.gemma_version is not None or self.numbers >= GEMMA_SOURCE_REQUIRED_SINCE


def read_model_version(source: Mapping[str, Any] | str | os.PathLike | Any) -> ModelVersion:
    """The :class:`ModelVersion` of a checkpoint, from its metadata: ``source`` is the metadata mapping (a
    ``.safetensors`` ``__metadata__`` or GGUF key-value dict), anything with a ``metadata`` mapping (an opened
    ``SafetensorsFile`` / ``GGUFCheckpointFile``), an ``LTXCheckpoint`` (its ``file``) or a path (``.gguf`` or
    ``.safetensors``; only the header is read). ``gemma_source_checkpoint`` is a JSON string in files (ltx-core
    parses every metadata value as JSON); an already parsed dict is accepted too. Mirrors what ltx-core 1.2.0's
    ``encoder_configurator._check_gemma_version`` reads.

    Raises:
        CheckpointError: a path that cannot be opened (missing, truncated, not the format its suffix says), or a
            ``gemma_source_checkpoint`` that is not a JSON object with a string ``gemma_version``.
    """
    if isinstance(source, str | os.PathLike):
        kind = GGUFCheckpointFile if os.fspath(source).lower().endswith(".gguf") else SafetensorsFile
        source = kind(source)
    if hasattr(source, "file") and hasattr(source.file, "metadata"):
        source = source.file
    metadata = getattr(source, "metadata", source)
    if not isinstance(metadata, Mapping):
        raise CheckpointError(f"Cannot read a model version from a {type(source).__name__}; pass a checkpoint path, "
                              "an opened checkpoint or its metadata.")
    version = metadata.get("model_version")
    raw = metadata.get(GEMMA_SOURCE_KEY)
    gemma = None
    if raw is not None:
        where = f"the checkpoint's '{GEMMA_SOURCE_KEY}' metadata"
        parsed = raw if isinstance(raw, Mapping) else parse_config_text(where, raw)
        gemma = parsed.get("gemma_version")
        if gemma is not None and not isinstance(gemma, str):
            raise CheckpointError(f"{where} has gemma_version={gemma!r}, not a string. The file is corrupt or "
                                  "hand-edited; download it again.")
    return ModelVersion(str(version) if version is not None else None, gemma)


def count_blocks(keys: Iterable[str], prefix: str) -> int:
    """Number of ``prefix.N.`` blocks among ``keys`` (the largest N + 1; N has at most 9 digits, longer indices are
    not blocks and are reported as unexpected tensors when the model is loaded)."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d{1,9})\.")
    indices = {int(m.group(1)) for k in keys if (m := pattern.match(k))}
    return max(indices) + 1 if indices else 0
