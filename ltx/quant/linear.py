"""``QuantLinear``: a Linear layer that keeps a file's quantised tensors and dequantises its weight per forward.

The stored tensors are buffers named as in the file (``weight_scale``, ``weight_scale_2``, ``input_scale``), except
the packed weight, which is ``qweight`` as in ``GGUFLinear`` (:data:`BUFFER_NAMES`): ``weight`` is the dequantised
float weight, as for every quantised layer, so nothing that expects a float ``.weight`` (ComfyUI's LoRA and weight
patching, memory accounting) mistakes the packed bytes for one. The resident bytes are the file's. Each
forward dequantises (:data:`~.formats.FORMATS`) on the buffers' device into the input's dtype, adds the weight
patches (LoRA deltas, as ``gguf_loader.GGUFLinear`` does) and calls ``F.linear`` — or, on CUDA when the hardware has
it, runs a fast kernel on the stored tensors (:mod:`.kernels`).

Every quantised layer (this one and ``GGUFLinear``) answers :class:`QuantisedLayer`: ``patches``, ``weight_shape``,
``dequantized_weight(dtype, patched=…)``; :func:`is_quantised` is how LoRA code tells them from float layers.
Casting a model (``model.to(torch.bfloat16)``) moves the stored tensors but never changes their dtype.

Mirrors ComfyUI ``comfy.ops.mixed_precision_ops.Linear`` (a ``QuantizedTensor`` weight + ``comfy_quant`` layout),
with plain buffers instead of a tensor subclass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from ...gguf_loader.linear import WeightPatch  # the one definition: a delta tensor or f(unpatched weight) -> delta
from .formats import FORMATS, QuantFormat


@runtime_checkable
class QuantisedLayer(Protocol):
    """What LoRA code and tools need from any quantised Linear (``QuantLinear``, ``gguf_loader.GGUFLinear``)."""

    patches: list[WeightPatch]

    @property
    def weight_shape(self) -> tuple[int, int]:
        """``(out_features, in_features)``."""
        ...

    def dequantized_weight(self, dtype: torch.dtype = torch.float32, *, patched: bool = True,
                           device: torch.device | None = None) -> torch.Tensor:
        """The ``(out, in)`` weight in ``dtype``, with the patches added when ``patched``, dequantised on ``device``
        (default: where the stored tensors are)."""
        ...


#: part name (as in the file and :data:`~.formats.FORMATS`) → buffer name, where they differ
BUFFER_NAMES: dict[str, str] = {"weight": "qweight"}
_PART_NAMES = {v: k for k, v in BUFFER_NAMES.items()}


def buffer_name(part: str) -> str:
    """The :class:`QuantLinear` buffer that holds the stored tensor ``part``."""
    return BUFFER_NAMES.get(part, part)


def is_quantised(module: object) -> bool:
    """Whether ``module`` is a quantised Linear (:class:`QuantisedLayer`: a ``patches`` list and the two methods)."""
    return isinstance(getattr(module, "patches", None), list) and isinstance(module, QuantisedLayer)


def add_patches(base: torch.Tensor, patches: list[WeightPatch], dtype: torch.dtype) -> torch.Tensor:
    """``base`` (float32 ``(out, in)``) plus every patch (callables see the unpatched ``base``, so order does not
    matter), in ``dtype``."""
    weight = base
    for patch in patches:
        delta = patch(base) if callable(patch) else patch
        weight = weight + delta.to(device=weight.device, dtype=weight.dtype)
    return weight.to(dtype)


class QuantLinear(nn.Module):
    """``y = x · (dequant(stored) + Σ patches)ᵀ + bias``, ``x (…, in_features)`` → ``(…, out_features)``.

    Args:
        in_features, out_features: the logical weight is ``(out_features, in_features)``.
        fmt: a :data:`~.formats.FORMATS` name or entry.
        parts: part name → ``(shape, dtype)`` of each stored tensor (empty buffers are made; load the file's tensors
            with ``load_state_dict(assign=True)``).
        params: the layer's format parameters (``comfy_quant`` JSON: ``convrot``, ``convrot_groupsize`` …).
        bias: whether there is a bias (an ordinary parameter in ``bias_dtype``).

    Raises:
        KeyError: ``format`` is not in :data:`~.formats.FORMATS` (the loaders check names first).
    """

    def __init__(self, in_features: int, out_features: int, fmt: str | QuantFormat,
                 parts: Mapping[str, tuple[tuple[int, ...], torch.dtype]], params: Mapping[str, Any] | None = None,
                 *, bias: bool = True, device: torch.device | str | None = None,
                 bias_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.format = FORMATS[fmt] if isinstance(fmt, str) else fmt
        self.params: dict[str, Any] = dict(params or {})
        for part, (shape, dtype) in parts.items():
            self.register_buffer(buffer_name(part), torch.empty(shape, dtype=dtype, device=device))
        self.bias = nn.Parameter(torch.empty(out_features, dtype=bias_dtype, device=device),
                                 requires_grad=False) if bias else None
        self.patches: list[WeightPatch] = []

    @property
    def weight_shape(self) -> tuple[int, int]:
        """The logical weight shape ``(out_features, in_features)``."""
        return (self.out_features, self.in_features)

    def stored(self) -> dict[str, torch.Tensor]:
        """The stored tensors by part name (as in the file: ``weight`` is the packed weight)."""
        return {_PART_NAMES.get(k, k): v for k, v in self._buffers.items() if v is not None}

    @property
    def weight(self) -> torch.Tensor:
        """Dequantised float32 weight ``(out_features, in_features)``, patched (for inspection; forward dequantises
        straight to the compute dtype), as ``GGUFLinear.weight``."""
        return self.dequantized_weight(torch.float32)

    @property
    def resident_bytes(self) -> int:
        """Bytes of the stored tensors (bias not counted)."""
        return sum(t.numel() * t.element_size() for t in self.stored().values())

    def dequantized_weight(self, dtype: torch.dtype = torch.float32, *, patched: bool = True,
                           device: torch.device | None = None) -> torch.Tensor:
        """The weight ``(out, in)`` in ``dtype``, with the patches added when ``patched``; dequantised on ``device``
        (the stored tensors are copied there first: ComfyUI's low-VRAM casting) or, by default, the buffers'."""
        stored = self.stored()
        if device is not None:
            stored = {k: v.to(device) for k, v in stored.items()}
        if not patched or not self.patches:
            return self.format.dequantize(stored, self.params, self.weight_shape, dtype)
        base = self.format.dequantize(stored, self.params, self.weight_shape, torch.float32)
        return add_patches(base, self.patches, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (…, in_features)`` → ``(…, out_features)`` in ``x``'s dtype on ``x``'s device."""
        from .kernels import KERNELS, select_kernel

        return KERNELS[select_kernel(self, x)](self, x)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> QuantLinear:
        """``nn.Module._apply`` (``.to``, ``.cuda``, ``.half`` …) that moves the stored tensors but keeps their dtypes
        (a dtype cast would undo the quantisation); the bias follows ``fn`` as usual."""
        kept = {k: v for k, v in self._buffers.items() if v is not None}
        super()._apply(fn, recurse)
        for name, old in kept.items():
            new = self._buffers[name]
            if new is not None and new.dtype != old.dtype:
                self._buffers[name] = old.to(device=new.device)
        return self

    def extra_repr(self) -> str:
        """Sizes, format, bias and number of patches, for ``repr``."""
        return (f"in_features={self.in_features}, out_features={self.out_features}, format={self.format.name}, "
                f"bias={self.bias is not None}, patches={len(self.patches)}")


def replace_with_quant(module: nn.Module, layers: Mapping[str, tuple[str, Mapping[str, tuple[tuple[int, ...],
                                                                                               torch.dtype]],
                                                                   Mapping[str, Any]]],
                       bias_dtypes: Mapping[str, torch.dtype] | None = None) -> list[str]:
    """Swap every ``nn.Linear`` whose path is in ``layers`` (path → ``(format, parts, params)``, see
    :class:`QuantLinear`) for an empty :class:`QuantLinear` on the same device (use on a meta-device model, then
    load the state dict with ``assign=True``). Returns the replaced paths."""
    bias_dtypes = bias_dtypes or {}
    replaced = []
    for path, child in list(module.named_modules()):
        if path not in layers or not isinstance(child, nn.Linear):
            continue
        fmt, parts, params = layers[path]
        new = QuantLinear(child.in_features, child.out_features, fmt, parts, params, bias=child.bias is not None,
                          device=child.weight.device, bias_dtype=bias_dtypes.get(path, torch.float32))
        parent_path, _, attr = path.rpartition(".")
        parent = module.get_submodule(parent_path) if parent_path else module
        setattr(parent, attr, new)
        replaced.append(path)
    return replaced
