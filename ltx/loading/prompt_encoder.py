"""A :class:`~rs_ltxv.ltx.text.encoder.PromptEncoder` from files: Gemma-3 or LTX-2.5's Gemma-4 (+ its tokenizer) and the
text connectors of an LTX checkpoint.

The text layer does not import the loading layer: this is the one factory that reads the files.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..text.encoder import PromptEncoder
from ..text.gemma import GemmaTextModel
from ..text.gemma4 import Gemma4TextModel
from ..text.processor import TextConnectors
from ..text.tokenizer import GemmaTokenizer
from .checkpoint import LTXCheckpoint, load_text_connectors, open_checkpoint
from .gemma import load_gemma, load_gemma_tokenizer
from .gemma4 import is_gemma4
from .gemma4_parts import check_text_encoder, read_gemma4_prompt_parts


def read_prompt_encoder_parts(
    gemma_path: str | os.PathLike,
    ltx_checkpoint: str | os.PathLike | LTXCheckpoint,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
) -> tuple[GemmaTextModel | Gemma4TextModel, GemmaTokenizer, TextConnectors]:
    """Gemma (Hugging Face folder, ComfyUI single file or GGUF) in ``dtype`` on ``device``, its tokenizer, and the
    feature extractor + connectors of ``ltx_checkpoint`` (a path or an opened :class:`LTXCheckpoint`). LTX-2.5's
    bundled Gemma-4 file (told by its content) goes to :func:`~.gemma4_parts.read_gemma4_prompt_parts` (its
    projection replaces the checkpoint's); whether the Gemma belongs to the checkpoint is checked first
    (:func:`~.gemma4_parts.check_text_encoder`), before any weight is read.

    Mirrors ``ltx_core.text_encoders.gemma.encoders.encoder_configurator.GemmaTextEncoderConfigurator`` +
    ``EmbeddingsProcessorConfigurator`` (same module), each built by
    ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder``.

    Raises:
        CheckpointError: see :func:`~.gemma.load_gemma`, :func:`~.gemma.load_gemma_tokenizer` and
            :func:`~.checkpoint.load_text_connectors`; a Gemma-3 text encoder with an LTX-2.5 checkpoint or the
            Gemma-4 one with an LTX-2 / LTX-2.3 checkpoint (:func:`~.gemma4_parts.check_text_encoder`).
    """
    ckpt = ltx_checkpoint if isinstance(ltx_checkpoint, LTXCheckpoint) else open_checkpoint(ltx_checkpoint)
    if is_gemma4(gemma_path):
        return read_gemma4_prompt_parts(gemma_path, ckpt, dtype=dtype, device=device)
    check_text_encoder(ckpt, Path(gemma_path).name, None, gemma4=False)
    gemma = load_gemma(gemma_path, dtype=dtype, device=device)
    tokenizer = load_gemma_tokenizer(gemma_path)
    connectors = load_text_connectors(ckpt, dtype=dtype, device=device)
    return gemma, tokenizer, connectors


def load_prompt_encoder(
    gemma_path: str | os.PathLike,
    ltx_checkpoint: str | os.PathLike | LTXCheckpoint,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
    **kw,
) -> PromptEncoder:
    """:func:`read_prompt_encoder_parts` as a :class:`PromptEncoder` (``kw``: its ``cache_size``, ``backend``).
    The pair of ltx-core's ``ltx_core.text_encoders.gemma.encoders.base_encoder.GemmaTextEncoder`` and
    ``ltx_core.text_encoders.gemma.embeddings_processor.EmbeddingsProcessor``.

    Raises:
        CheckpointError: see :func:`read_prompt_encoder_parts`.
        ConfigError: Gemma and the checkpoint's text projection do not fit together.
        AttentionBackendError: ``backend`` is unknown or not installed (:func:`rs_ltxv.ops.resolve_backend`).
    """
    return PromptEncoder(*read_prompt_encoder_parts(gemma_path, ltx_checkpoint, dtype=dtype, device=device), **kw)

