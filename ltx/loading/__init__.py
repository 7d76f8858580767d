"""Checkpoint loading: validated files, config detection, meta-device construction, memory-mapped reads.

Every component loader follows the same three steps, each written once: open the file as a
:class:`~.source.TensorSource` (``safetensors_file``, ``gguf_checkpoint``, ``gemma_tensors``, ``gemma_gguf``), resolve
its config — given → stored ``__metadata__["config"]`` → inferred from tensor shapes (:func:`~.resolve.resolve_config`)
— and build the module on meta, then fill it (:func:`~.materialize.materialize`). Mirrors
``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder`` (``model_config`` → ``meta_model`` → ``build``).

Every loader raises :class:`~rs_ltxv.ltx.errors.CheckpointError` (a ``ValueError``) for a file it cannot use; GGUF
reader errors are re-raised as ``CheckpointError`` here.
"""

from .checkpoint import LTXCheckpoint, is_distilled, load_text_connectors, load_transformer, open_checkpoint
from .gemma import build_gemma, load_gemma, load_gemma_tokenizer
from .materialize import materialize
from .prompt_encoder import load_prompt_encoder
from .resolve import Resolved, resolve_config
from .safetensors_file import SafetensorsFile
from .source import TensorInfo, TensorSource

__all__ = ["LTXCheckpoint", "Resolved", "SafetensorsFile", "TensorInfo", "TensorSource", "build_gemma",
           "is_distilled", "load_gemma", "load_gemma_tokenizer", "load_prompt_encoder", "load_text_connectors",
           "load_transformer", "materialize", "open_checkpoint", "resolve_config"]
