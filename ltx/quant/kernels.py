"""How a :class:`~.linear.QuantLinear` computes ``x · Wᵀ + b``: kernels by name and the rule that picks one.

* ``dequantize`` (everywhere): dequantise the weight into ``x``'s dtype, add the patches, ``F.linear``.
* ``scaled_mm`` (CUDA sm89+, per-tensor ``float8_e4m3fn``, no patches): ``x`` quantised per tensor to e4m3 and
  ``torch._scaled_mm`` on the stored FP8 weight (ltx-core ``FP8Linear`` uses the TensorRT-LLM twin with the file's
  static ``input_scale``; here the activation scale is dynamic, as in ComfyUI).
* ``int_mm`` (CUDA, ``int8_tensorwise``, no patches): ``x`` (rotated first for ConvRot) quantised per row to int8,
  ``torch._int_mm`` with the stored int8 weight, rescaled by both scales (comfy-kitchen ``TensorWiseINT8Layout``).

The fast kernels change the result by the activation rounding (≈ 1 % relative), like core ComfyUI's; they are
only chosen where :data:`RULES` allow, first match wins.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .hadamard import rotate_groups

_E4M3_MAX = 448.0


def _bias(layer: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    return None if layer.bias is None else layer.bias.to(device=x.device, dtype=x.dtype)


def dequantize_linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``F.linear(x, dequantised patched weight, bias)``; the weight is built on the buffers' device, then moved."""
    weight = layer.dequantized_weight(x.dtype)
    return nn.functional.linear(x, weight.to(x.device), _bias(layer, x))


def scaled_mm_linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """FP8 × FP8 → ``x.dtype`` with ``torch._scaled_mm`` (per-tensor scales, float32)."""
    rows = x.reshape(-1, layer.in_features)
    x_scale = (rows.abs().amax().float() / _E4M3_MAX).clamp(min=1e-12)
    xq = (rows.float() / x_scale).clamp(-_E4M3_MAX, _E4M3_MAX).to(torch.float8_e4m3fn)
    y = torch._scaled_mm(xq, layer.qweight.t(), scale_a=x_scale, scale_b=layer.weight_scale.float().reshape(()),
                         out_dtype=x.dtype)
    y = y if layer.bias is None else y + _bias(layer, x)
    return y.reshape(*x.shape[:-1], layer.out_features)


def int_mm_linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """INT8 × INT8 → int32 with ``torch._int_mm``, rescaled by the per-row activation and weight scales."""
    rows = x.reshape(-1, layer.in_features).float()
    if layer.params.get("convrot"):
        rows = rotate_groups(rows, int(layer.params.get("convrot_groupsize", 256)))
    x_scale = (rows.abs().amax(dim=1, keepdim=True) / 127.0).clamp(min=1e-12)
    xq = (rows / x_scale).round().clamp(-127, 127).to(torch.int8)
    w_scale = layer.weight_scale.float().reshape(1, -1) if layer.weight_scale.numel() > 1 \
        else layer.weight_scale.float().reshape(())
    y = (torch._int_mm(xq, layer.qweight.t()).float() * x_scale * w_scale).to(x.dtype)
    y = y if layer.bias is None else y + _bias(layer, x)
    return y.reshape(*x.shape[:-1], layer.out_features)


KERNELS: dict[str, Callable[[nn.Module, torch.Tensor], torch.Tensor]] = {
    "dequantize": dequantize_linear, "scaled_mm": scaled_mm_linear, "int_mm": int_mm_linear}


def _capability(x: torch.Tensor) -> tuple[int, int]:
    return torch.cuda.get_device_capability(x.device) if x.is_cuda else (0, 0)


def _plain(layer: nn.Module, x: torch.Tensor) -> bool:
    """CUDA input and weights on its device, no patches, sizes the tensor-core kernels take."""
    return (x.is_cuda and layer.qweight.device == x.device and not layer.patches
            and layer.in_features % 16 == 0 and layer.out_features % 16 == 0)


#: (kernel, condition) in order; the first whose condition holds is used, else ``dequantize``
RULES: tuple[tuple[str, Callable[[nn.Module, torch.Tensor], bool]], ...] = (
    ("scaled_mm", lambda layer, x: (layer.format.name == "float8_e4m3fn" and _plain(layer, x)
                                    and layer.weight_scale.numel() == 1 and hasattr(torch, "_scaled_mm")
                                    and _capability(x) >= (8, 9))),
    ("int_mm", lambda layer, x: (layer.format.name == "int8_tensorwise" and _plain(layer, x)
                                 and x.numel() // layer.in_features > 16 and hasattr(torch, "_int_mm"))),
)


def select_kernel(layer: nn.Module, x: torch.Tensor) -> str:
    """The :data:`KERNELS` name for ``layer`` on input ``x`` (:data:`RULES`, else ``"dequantize"``)."""
    return next((name for name, ok in RULES if ok(layer, x)), "dequantize")
