"""Checkpoint loading: validated files, config detection, meta-device construction, memory-mapped reads."""

from .checkpoint import LTXCheckpoint, load_text_connectors, load_transformer, open_checkpoint
from .gemma import build_gemma, load_gemma, load_gemma_tokenizer
from .safetensors_file import SafetensorsFile

__all__ = ["LTXCheckpoint", "SafetensorsFile", "build_gemma", "load_gemma", "load_gemma_tokenizer",
           "load_text_connectors", "load_transformer", "open_checkpoint"]
