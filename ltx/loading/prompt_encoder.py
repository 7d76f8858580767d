"""A :class:`~rs_ltxv.ltx.text.encoder.PromptEncoder` from files: Gemma-3 (+ its tokenizer) and the text connectors
of an LTX checkpoint.

The text layer does not import the loading layer: this is the one factory that reads the files.
"""

from __future__ import annotations

import os

import torch

from ..text.encoder import PromptEncoder
from ..text.gemma import GemmaTextModel
from ..text.processor import TextConnectors
from ..text.tokenizer import GemmaTokenizer
from .checkpoint import LTXCheckpoint, load_text_connectors
from .gemma import load_gemma, load_gemma_tokenizer


def read_prompt_encoder_parts(
    gemma_path: str | os.PathLike,
    ltx_checkpoint: str | os.PathLike | LTXCheckpoint,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
) -> tuple[GemmaTextModel, GemmaTokenizer, TextConnectors]:
    """Gemma (Hugging Face folder, ComfyUI single file or GGUF) in ``dtype`` on ``device``, its tokenizer, and the
    feature extractor + connectors of ``ltx_checkpoint`` (a path or an opened :class:`LTXCheckpoint`).

    Mirrors ``ltx_core.text_encoders.gemma.encoders.encoder_configurator.GemmaTextEncoderConfigurator`` +
    ``EmbeddingsProcessorConfigurator`` (same module), each built by
    ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder``.

    Raises:
        CheckpointError: see :func:`~.gemma.load_gemma`, :func:`~.gemma.load_gemma_tokenizer` and
            :func:`~.checkpoint.load_text_connectors`.
    """
    gemma = load_gemma(gemma_path, dtype=dtype, device=device)
    tokenizer = load_gemma_tokenizer(gemma_path)
    connectors = load_text_connectors(ltx_checkpoint, dtype=dtype, device=device)
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

