"""ComfyUI's low-VRAM weight-casting protocol on our layers, without importing ComfyUI.

ComfyUI's memory manager (``comfy.model_patcher.ModelPatcher.load`` with a ``lowvram_model_memory`` budget) loads
the modules that fit onto the GPU and, for the others, leaves the weights on the offload device and sets
``comfy_cast_weights = True`` (and ``weight_function`` / ``bias_function``: LoRA patches computed at use,
``LowVramPatch``). It does this only for modules that carry those attributes — core's ``comfy.ops`` layers
(``CastWeightBiasOp``). A module that lacks them is loaded whole or not at all, and a layer left on the CPU then
fails on GPU inputs. :class:`CastLinear`, :class:`CastRMSNorm` and the quantised :class:`CastQuantLinear` /
:class:`CastGGUFLinear` (packed tensors copied and dequantised at use, :func:`cast_quantised`) carry the same three
attributes and, when asked to, cast their weights to the input's device and dtype at every call and apply the
functions — the contract of ``comfy.ops.cast_bias_weight`` (without its pinned cast buffers and side streams). With
the flags off and no functions they are the plain layers (same parameters, same state dict, same results).

:func:`enable_weight_casting` turns the plain and quantised layers of a built model into these
classes in place; the ComfyUI MODEL (``nodes/comfy_model.py`` ``LTXVModule``) does it for its transformer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from ...gguf_loader.linear import GGUFLinear
from ..quant.linear import QuantLinear


class CastWeights:
    """The attributes core's ``comfy.ops.CastWeightBiasOp`` declares: ComfyUI's memory manager looks for
    ``comfy_cast_weights`` to decide that a module may stay offloaded, and sets the three per instance."""

    comfy_cast_weights: bool = False
    # class-level empty defaults, as core's; ComfyUI assigns a new list per instance before filling it
    weight_function: ClassVar[list[Callable[[torch.Tensor], torch.Tensor]]] = []
    bias_function: ClassVar[list[Callable[[torch.Tensor], torch.Tensor]]] = []

    def casting(self) -> bool:
        """True when weights must be cast at use (offloaded by ComfyUI, or patches to apply on the fly)."""
        return bool(self.comfy_cast_weights or self.weight_function or self.bias_function)


def cast_weight_bias(layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``layer.weight`` and ``layer.bias`` on ``x``'s device in ``x``'s dtype, with ``weight_function`` /
    ``bias_function`` applied in order (each ``f(tensor) -> tensor`` of the same shape).

    Follows ``comfy.ops.cast_bias_weight``: move (a copy when functions follow, so the stored weight is never
    changed), cast to the compute dtype, then apply the functions.
    """
    w_fns, b_fns = layer.weight_function, layer.bias_function
    weight = layer.weight.to(device=x.device, copy=bool(w_fns)).to(dtype=x.dtype)
    for f in w_fns:
        weight = f(weight)
    bias = getattr(layer, "bias", None)
    if bias is not None:
        bias = bias.to(device=x.device, copy=bool(b_fns)).to(dtype=x.dtype)
        for f in b_fns:
            bias = f(bias)
    return weight, bias


class CastLinear(nn.Linear, CastWeights):
    """``nn.Linear`` following ComfyUI's weight-casting protocol (see module doc): ``x (…, in)`` → ``(…, out)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Plain ``nn.Linear`` unless :meth:`casting`; then with the weights cast to ``x``'s device and dtype."""
        if not self.casting():
            return super().forward(x)
        weight, bias = cast_weight_bias(self, x)
        return nn.functional.linear(x, weight, bias)


class CastRMSNorm(nn.RMSNorm, CastWeights):
    """``nn.RMSNorm`` following ComfyUI's weight-casting protocol (see module doc); shapes unchanged."""

    bias = None  # ComfyUI reads ``<layer>.bias`` of every casting layer (core's RMSNorm has one, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Plain ``nn.RMSNorm`` unless :meth:`casting` (then its scale is cast to ``x``'s device and dtype)."""
        if not self.casting() or self.weight is None:
            return super().forward(x)
        weight, _ = cast_weight_bias(self, x)
        return nn.functional.rms_norm(x, self.normalized_shape, weight, self.eps)


def cast_quantised(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A quantised Linear (``QuantLinear`` / ``GGUFLinear``) with its stored tensors on another device: copy the
    packed tensors and scales to ``x``'s device, dequantise there into ``x``'s dtype (with the layer's ``patches``:
    LoRA deltas), apply ``weight_function`` / ``bias_function`` and run ``F.linear``. ``x (…, in)`` → ``(…, out)``.
    The stored tensors are never changed; on one device the result equals the layer's own dequantise path bit for
    bit."""
    weight = layer.dequantized_weight(x.dtype, device=x.device)
    for f in layer.weight_function:
        weight = f(weight)
    bias = layer.bias
    if bias is not None:
        bias = bias.to(device=x.device, copy=bool(layer.bias_function)).to(dtype=x.dtype)
        for f in layer.bias_function:
            bias = f(bias)
    return nn.functional.linear(x, weight, bias)


class CastQuantLinear(QuantLinear, CastWeights):
    """:class:`~rs_ltxv.ltx.quant.QuantLinear` following ComfyUI's weight-casting protocol (:func:`cast_quantised`
    when :meth:`casting`, its own kernels otherwise)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (…, in_features)`` → ``(…, out_features)`` on ``x``'s device."""
        return cast_quantised(self, x) if self.casting() else super().forward(x)


class CastGGUFLinear(GGUFLinear, CastWeights):
    """``gguf_loader.GGUFLinear`` following ComfyUI's weight-casting protocol (:func:`cast_quantised` when
    :meth:`casting`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (…, in_features)`` → ``(…, out_features)`` on ``x``'s device."""
        return cast_quantised(self, x) if self.casting() else super().forward(x)


_CLASSES: dict[type, type] = {nn.Linear: CastLinear, nn.RMSNorm: CastRMSNorm, QuantLinear: CastQuantLinear,
                              GGUFLinear: CastGGUFLinear}


def enable_weight_casting(model: nn.Module) -> int:
    """Turn every plain ``nn.Linear`` / ``nn.RMSNorm`` / ``QuantLinear`` / ``GGUFLinear`` in ``model`` into
    :class:`CastLinear` / :class:`CastRMSNorm` / :class:`CastQuantLinear` / :class:`CastGGUFLinear` in place (the
    instances keep their parameters and buffers; only the class changes). Other layers are left as they are.
    Returns the number of layers changed; calling it again changes none."""
    changed = 0
    for module in model.modules():
        new = _CLASSES.get(type(module))
        if new is not None:
            module.__class__ = new
            changed += 1
    return changed
