"""Quantised Linear weights kept quantised: one family of layers, table-driven by format.

``formats.py`` (name → how the stored tensors dequantise: FP8 scaled / unscaled, INT8 tensorwise + ConvRot, NVFP4),
``hadamard.py`` (ConvRot rotation), ``nvfp4.py`` (e2m1 table, cuBLAS block-scale layout), ``linear.py``
(``QuantLinear``, the :class:`QuantisedLayer` interface ``gguf_loader.GGUFLinear`` shares), ``kernels.py``
(dequantise-then-matmul, or ``torch._scaled_mm`` / ``torch._int_mm`` on CUDA). Which layers of a file are quantised
is decided by ``ltx/loading/quant_plan.py``. Imports torch and ``gguf_loader.linear.WeightPatch``.
"""

from .formats import FORMATS, QuantFormat
from .kernels import KERNELS, select_kernel
from .linear import QuantisedLayer, QuantLinear, WeightPatch, is_quantised, replace_with_quant

__all__ = ["FORMATS", "KERNELS", "QuantFormat", "QuantLinear", "QuantisedLayer", "WeightPatch", "is_quantised",
           "replace_with_quant", "select_kernel"]
