"""Where each component lives in LTX-2 checkpoint files, and telling LTX-2 from LTX-2.3 and from foreign files.

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

import re
from collections.abc import Iterable

from ..config import Version
from ..errors import CheckpointError

DIFFUSION_PREFIX = "model.diffusion_model."
CONNECTOR_PREFIXES = {
    "video_connector": "video_embeddings_connector.",
    "audio_connector": "audio_embeddings_connector.",
}
PROJECTION_PREFIX = "text_embedding_projection."
OTHER_COMPONENTS = ("vae.", "audio_vae.", "vocoder.")

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
    "vae" | "audio_vae" | "vocoder": {module_name: file_key}}``. The prefixes are those of ltx-core's key filters
    (``LTXV_MODEL_COMFY_RENAMING_MAP``, ``EMBEDDINGS_PROCESSOR_KEY_OPS``, ``VAE_*_COMFY_KEYS_FILTER``,
    ``AUDIO_VAE_*_COMFY_KEYS_FILTER``, ``VOCODER_COMFY_KEYS_FILTER``)."""
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


def detect_version(transformer_keys: Iterable[str]) -> Version:
    """:attr:`Version.LTX23` when the transformer has the prompt AdaLN or gated attention, else
    :attr:`Version.LTX2` (caption projections in the transformer)."""
    keys = set(transformer_keys)
    if "prompt_adaln_single.linear.weight" in keys or any(k.endswith("to_gate_logits.weight") for k in keys):
        return Version.LTX23
    return Version.LTX2


def count_blocks(keys: Iterable[str], prefix: str) -> int:
    """Number of ``prefix.N.`` blocks among ``keys`` (the largest N + 1; N has at most 9 digits, longer indices are
    not blocks and are reported as unexpected tensors when the model is loaded)."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d{1,9})\.")
    indices = {int(m.group(1)) for k in keys if (m := pattern.match(k))}
    return max(indices) + 1 if indices else 0
