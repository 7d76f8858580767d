"""GGUF checkpoints: memory-mapped reading with all metadata, torch dequantisation kernels, quantised Linear layers
and the tensor-name maps of the LTX-2 and Gemma-3 files in circulation. Imports only torch, gguf and numpy."""

from .dequant import DEQUANTIZERS, SUPPORTED, check_supported, dequantize
from .errors import GGUFError, UnsupportedQuantError
from .linear import GGUFLinear, WeightPatch, replace_linears
from .names import gemma3_config, gemma3_hf_name, gemma3_state, ltx_key
from .reader import GGUFFile, GGUFTensor

__all__ = [
    "DEQUANTIZERS", "SUPPORTED", "GGUFError", "GGUFFile", "GGUFLinear", "GGUFTensor", "UnsupportedQuantError",
    "WeightPatch", "check_supported", "dequantize", "gemma3_config", "gemma3_hf_name", "gemma3_state", "ltx_key",
    "replace_linears",
]
