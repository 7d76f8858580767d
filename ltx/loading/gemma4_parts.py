"""The LTX-2.5 prompt path from files: which Gemma a checkpoint needs (checked before any weight is read), the text
connectors with the projection the bundled Gemma-4 file carries, and the Gemma-4 half of
:func:`~.prompt_encoder.read_prompt_encoder_parts`.

Which Gemma a checkpoint needs, as ltx-core 1.2.0 decides it
(``ltx_core.text_encoders.gemma.encoders.encoder_configurator._check_gemma_version``):

* a ``gemma_source_checkpoint`` metadata entry (JSON, LTX-2.5): a Gemma-4 whose config's ``gemma_version`` equals
  its ``gemma_version``;
* else a ``model_version`` ≥ 2.4.0 (metadata, or the version told from the tensors): a Gemma-4 (ltx-core would
  also demand the entry; RS-LTXV accepts any Gemma-4 because re-saved files lose their metadata);
* else (LTX-2 / LTX-2.3): Gemma-3.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..text.gemma4 import Gemma4TextModel
from ..text.gemma4_tokenizer import Gemma4Tokenizer
from ..text.processor import TextConnectors
from .checkpoint import LTXCheckpoint, load_text_connectors
from .gemma4 import Gemma4Bundle, load_gemma4, load_gemma4_tokenizer, open_gemma4
from .layout import parse_model_version, read_model_version
from .materialize import materialize

GEMMA4_SINCE = (2, 4)  # ltx-core 1.2.0 ``_GEMMA_SOURCE_CHECKPOINT_REQUIRED_SINCE``
GEMMA4_FILES = "gemma4-12b-with-proj-ltx-2.5-bf16.safetensors (or its comfy-int8-convrot version)"
GEMMA3_FILES = "gemma_3_12B_it.safetensors (ComfyUI's file, a fp8 / GGUF version of it, or a Gemma-3 12B folder)"


def needed_gemma(ckpt: LTXCheckpoint) -> tuple[bool, str | None, str]:
    """``(needs Gemma-4, required gemma_version or None, what the checkpoint is)`` for ``ckpt``, from its
    ``gemma_source_checkpoint`` / ``model_version`` metadata (:func:`~.layout.read_model_version`) and the version
    its tensors show (module docstring).

    Mirrors ``ltx_core.text_encoders.gemma.encoders.encoder_configurator._check_gemma_version`` (the decision
    half).

    Raises:
        CheckpointError: a malformed ``gemma_source_checkpoint`` entry.
    """
    stamp = read_model_version(ckpt)
    needs = stamp.needs_gemma4 or parse_model_version(ckpt.version.value) >= GEMMA4_SINCE
    what = (f"{ckpt.path.name} (model_version {stamp.model_version})" if stamp.model_version
            else f"{ckpt.path.name} ({ckpt.version.display})")
    return needs, stamp.gemma_version, what


def check_text_encoder(ckpt: LTXCheckpoint, gemma_name: str, gemma_version: str | None, *, gemma4: bool) -> None:
    """Check that the text encoder ``gemma_name`` (Gemma-4 when ``gemma4``, with config ``gemma_version``) belongs to
    ``ckpt``; called before any weight is read.

    Mirrors ``ltx_core.text_encoders.gemma.encoders.encoder_configurator._check_gemma_version``.

    Raises:
        CheckpointError: a Gemma-3 text encoder with an LTX-2.5 checkpoint, the Gemma-4 one with an LTX-2 / LTX-2.3
            checkpoint, or a Gemma-4 of another ``gemma_version`` than the checkpoint names; the message says which
            file to use.
    """
    needs4, required, what = needed_gemma(ckpt)
    if needs4 and not gemma4:
        raise CheckpointError(f"{gemma_name} is a Gemma-3 text encoder, but {what} is an LTX-2.5 checkpoint: it "
                              f"encodes prompts with LTX's Gemma-4 fine-tune{f' ({required})' if required else ''}. "
                              f"Choose {GEMMA4_FILES} as the text encoder.")
    if gemma4 and not needs4:
        raise CheckpointError(f"{gemma_name} is LTX-2.5's Gemma-4 text encoder, but {what} is an LTX-2 / LTX-2.3 "
                              f"checkpoint, which encodes prompts with Gemma-3 12B. Choose {GEMMA3_FILES} as the "
                              "text encoder, or use an LTX-2.5 checkpoint with this one.")
    if gemma4 and required is not None and gemma_version != required:
        raise CheckpointError(f"Gemma version mismatch: {what} was trained with the Gemma-4 text encoder "
                              f"{required!r} (its gemma_source_checkpoint metadata), but {gemma_name} is "
                              f"{gemma_version!r}. Use the text encoder released with this checkpoint "
                              f"({GEMMA4_FILES}).")


def load_gemma4_text_connectors(ckpt: LTXCheckpoint, bundle: Gemma4Bundle, *, dtype: torch.dtype | None = None,
                                device: torch.device | str = "cpu") -> TextConnectors:
    """The feature extractor from the bundled file's ``text_embedding_projection.*`` (the checkpoint's when the
    bundle has none) and both connectors from ``ckpt``, as one :class:`~rs_ltxv.ltx.text.processor.TextConnectors`
    (quantised projection layers stay quantised, as everywhere).

    Mirrors ``ltx_core.text_encoders.gemma.encoders.encoder_configurator.EmbeddingsProcessorConfigurator`` loaded
    from ``(transformer, text encoder)`` with ``EMBEDDINGS_PROCESSOR_KEY_OPS`` (ltx-pipelines 1.2.0
    ``ModelPaths.from_split``: the text-encoder file's projection wins).

    Raises:
        CheckpointError: the checkpoint lacks a connector; the projection does not fit the Gemma config (width ×
            hidden states) or the checkpoint's stream widths.
    """
    if bundle.projection is None:
        return load_text_connectors(ckpt, dtype=dtype, device=device)
    missing = [c for c in ("video_connector", "audio_connector") if c not in ckpt.components]
    if missing:
        raise CheckpointError(f"{ckpt.path.name} has no {', '.join(missing)} tensors; the text connectors live in "
                              "the LTX checkpoint (the official file or ComfyUI's diffusion model file).")
    file, names = bundle.projection
    # the feature extractor's widths come from the Gemma config, as ltx-core's _create_feature_extractor reads them
    # (a checkpoint config inferred from tensors cannot know the Gemma width)
    cfg = replace(ckpt.config, caption_channels=bundle.config.hidden_size)
    with torch.device("meta"):
        text = TextConnectors(cfg, bundle.config.num_hidden_states)
    parts = {"feature_extractor": (file, names), "video_connector": (ckpt.file, ckpt.components["video_connector"]),
             "audio_connector": (ckpt.file, ckpt.components["audio_connector"])}
    for attr, (source, keys) in parts.items():
        empty = getattr(text, attr)
        setattr(text, attr, materialize(lambda m=empty: m, source, keys, what=f"text {attr.replace('_', ' ')}",
                                        dtype=dtype, device=device))
    return text.eval().requires_grad_(False)


def read_gemma4_prompt_parts(gemma_path: str | os.PathLike, ckpt: LTXCheckpoint, *,
                             dtype: torch.dtype = torch.bfloat16, device: torch.device | str = "cpu",
                             ) -> tuple[Gemma4TextModel, Gemma4Tokenizer, TextConnectors]:
    """Gemma-4 model, tokenizer and text connectors for ``ckpt`` from a bundled file or folder, after
    :func:`check_text_encoder` (nothing is read before the check passes).

    Mirrors ltx-pipelines 1.2.0 ``ltx_pipelines.utils.blocks.PromptEncoder`` (split layout).

    Raises:
        CheckpointError: see :func:`check_text_encoder`, :func:`~.gemma4.open_gemma4` and
            :func:`load_gemma4_text_connectors`.
    """
    bundle = open_gemma4(gemma_path)
    check_text_encoder(ckpt, Path(gemma_path).name, bundle.config.gemma_version, gemma4=True)
    gemma = load_gemma4(bundle, dtype=dtype, device=device)
    tokenizer = load_gemma4_tokenizer(bundle)
    return gemma, tokenizer, load_gemma4_text_connectors(ckpt, bundle, dtype=dtype, device=device)
