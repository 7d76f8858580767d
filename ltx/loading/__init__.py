"""Checkpoint loading: validated files, config detection, meta-device construction, memory-mapped reads."""

from .checkpoint import LTXCheckpoint, load_text_connectors, load_transformer, open_checkpoint
from .safetensors_file import SafetensorsFile

__all__ = ["LTXCheckpoint", "SafetensorsFile", "load_text_connectors", "load_transformer", "open_checkpoint"]
