"""Errors of the GGUF reader. ``gguf_loader`` imports only torch, gguf and numpy, so these are plain ``ValueError``
subclasses; ``ltx/loading`` re-raises them as ``CheckpointError`` for users."""


class GGUFError(ValueError):
    """A GGUF file cannot be used: unreadable, truncated, wrong architecture, or tensors that do not fit."""


class UnsupportedQuantError(GGUFError):
    """A tensor is stored in a GGML type that has no torch dequantiser here."""


for _cls in (GGUFError, UnsupportedQuantError):  # shown by ComfyUI as rs_ltxv.…, not the pack's folder path
    _cls.__module__ = f"rs_ltxv.{__name__.partition('.')[2]}" if "." in __name__ else __name__
