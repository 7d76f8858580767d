"""LTX-2 / LTX-2.3 audio-video transformer."""

from .attention import AttentionKind
from .block import AVTransformerBlock, RunOptions
from .model import LTXAVTransformer, attention_bias, velocity_to_x0
from .perturbations import Perturbations, Skip, SkipKind, skip
from .stream import StreamInput, StreamState

__all__ = [
    "AVTransformerBlock",
    "AttentionKind",
    "LTXAVTransformer",
    "Perturbations",
    "RunOptions",
    "Skip",
    "SkipKind",
    "StreamInput",
    "StreamState",
    "attention_bias",
    "skip",
    "velocity_to_x0",
]
