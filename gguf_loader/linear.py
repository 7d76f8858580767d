"""``GGUFLinear``: a Linear layer whose weight stays in its GGUF encoding and is dequantised on every forward.

The weight lives in the buffer ``qweight`` (uint8, raw GGML blocks, ``(out, in_bytes)``) with ``qtype`` and the
logical ``(out, in)`` shape beside it; the bias (when any) is an ordinary parameter as stored. Each forward
dequantises the weight on the buffer's device into the input's dtype, adds the weight patches (LoRA-style deltas,
applied after dequantisation, never merged into the quantised bytes) and calls ``F.linear``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from gguf import GGMLQuantizationType
from torch import nn

from .dequant import byte_shape, check_supported, dequantize

#: a tensor of the weight's shape, or a callable ``f(dequantised_weight) -> delta`` (it gets the unpatched float32
#: weight); either is added to the dequantised weight
WeightPatch = torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


class GGUFLinear(nn.Module):
    """``y = x · (dequant(qweight) + Σ patches)ᵀ + bias`` with ``x (…, in_features)`` → ``y (…, out_features)``.

    Mirrors ComfyUI-GGUF's ``ops.GGMLOps.Linear`` (``GGMLLayer.get_weight``: dequantise, then add the patches),
    with the patches as :data:`WeightPatch` deltas instead of ``comfy.lora.calculate_weight`` inputs.

    Raises:
        UnsupportedQuantError: ``qtype`` has no dequantiser here (from the constructor).
        GGUFError: ``in_features`` is not a whole number of ``qtype`` blocks (from the constructor).
    """

    def __init__(self, in_features: int, out_features: int, qtype: int | GGMLQuantizationType, *, bias: bool = True,
                 device: torch.device | str | None = None, bias_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.qtype = check_supported(qtype, f"a {out_features}×{in_features} Linear weight")
        self.register_buffer("qweight", torch.empty(byte_shape(self.qtype, (out_features, in_features)),
                                                    dtype=torch.uint8, device=device))
        self.bias = nn.Parameter(torch.empty(out_features, dtype=bias_dtype, device=device),
                                 requires_grad=False) if bias else None
        self.patches: list[WeightPatch] = []

    @property
    def weight_shape(self) -> tuple[int, int]:
        """The logical weight shape ``(out_features, in_features)``."""
        return (self.out_features, self.in_features)

    def dequantized_weight(self, dtype: torch.dtype = torch.float32, *, patched: bool = True,
                           device: torch.device | None = None) -> torch.Tensor:
        """The weight, shape ``(out, in)``, in ``dtype``, with the patches added when ``patched``; dequantised on
        ``device`` (the packed bytes are copied there first: ComfyUI's low-VRAM casting) or, by default, the
        buffer's device."""
        qweight = self.qweight if device is None else self.qweight.to(device)
        if not patched or not self.patches:
            return dequantize(qweight, self.qtype, self.weight_shape, dtype)
        base = dequantize(qweight, self.qtype, self.weight_shape, torch.float32)
        weight = base
        for patch in self.patches:  # callables see the unpatched weight, so the order of patches does not matter
            delta = patch(base) if callable(patch) else patch
            weight = weight + delta.to(device=weight.device, dtype=weight.dtype)
        return weight.to(dtype)

    @property
    def weight(self) -> torch.Tensor:
        """Dequantised float32 weight of shape ``(out_features, in_features)``, patched (for inspection; forward
        dequantises straight to the compute dtype)."""
        return self.dequantized_weight(torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (…, in_features)`` → ``(…, out_features)`` in ``x``'s dtype on ``x``'s device; the patched weight is
        dequantised on the buffer's device, then moved."""
        weight = self.dequantized_weight(x.dtype)
        if weight.device != x.device:
            weight = weight.to(x.device)
        bias = None if self.bias is None else self.bias.to(device=x.device, dtype=x.dtype)
        return nn.functional.linear(x, weight, bias)

    def extra_repr(self) -> str:
        """Sizes, GGML type, bias and number of patches, for ``repr``."""
        return (f"in_features={self.in_features}, out_features={self.out_features}, qtype={self.qtype.name}, "
                f"bias={self.bias is not None}, patches={len(self.patches)}")


def replace_linears(module: nn.Module, qtypes: dict[str, GGMLQuantizationType],
                    bias_dtypes: dict[str, torch.dtype] | None = None) -> list[str]:
    """Swap every ``nn.Linear`` whose ``<path>`` is in ``qtypes`` (module path → stored type of ``<path>.weight``)
    for an empty :class:`GGUFLinear` on the same device (use on a meta-device model, then load the state dict).
    Returns the replaced paths. ComfyUI-GGUF does this by building the model with ``ops.GGMLOps``.

    Raises:
        UnsupportedQuantError: a type in ``qtypes`` has no dequantiser here.
    """
    bias_dtypes = bias_dtypes or {}
    replaced = []
    for path, child in list(module.named_modules()):
        if path not in qtypes or not isinstance(child, nn.Linear):
            continue
        new = GGUFLinear(child.in_features, child.out_features, qtypes[path], bias=child.bias is not None,
                         device=child.weight.device, bias_dtype=bias_dtypes.get(path, torch.float32))
        parent_path, _, attr = path.rpartition(".")
        parent = module.get_submodule(parent_path) if parent_path else module
        setattr(parent, attr, new)
        replaced.append(path)
    return replaced
