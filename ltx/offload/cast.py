"""ComfyUI's low-VRAM weight-casting protocol on our layers, without importing ComfyUI.

ComfyUI's memory manager (``comfy.model_patcher.ModelPatcher.load`` with a ``lowvram_model_memory`` budget) loads
the modules that fit onto the GPU and, for the others, leaves the weights on the offload device and sets
``comfy_cast_weights = True`` (and ``weight_function`` / ``bias_function``: LoRA patches computed at use,
``LowVramPatch``). It does this only for modules that carry those attributes — core's ``comfy.ops`` layers
(``CastWeightBiasOp``). A module that lacks them is loaded whole or not at all, and a layer left on the CPU then
fails on GPU inputs. :class:`CastLinear` and :class:`CastRMSNorm` carry the same three attributes and, when asked to,
cast their weights to the input's device and dtype at every call and apply the functions — the contract of
``comfy.ops.cast_bias_weight`` (without its pinned cast buffers and side streams). With the flags off and no
functions they are plain ``nn.Linear`` / ``nn.RMSNorm`` (same parameters, same state dict, same results).

:func:`enable_weight_casting` turns the plain ``nn.Linear`` / ``nn.RMSNorm`` layers of a built model into these
classes in place; the ComfyUI MODEL (``nodes/comfy_model.py`` ``LTXVModule``) does it for its transformer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn


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


_CLASSES: dict[type, type] = {nn.Linear: CastLinear, nn.RMSNorm: CastRMSNorm}


def enable_weight_casting(model: nn.Module) -> int:
    """Turn every plain ``nn.Linear`` / ``nn.RMSNorm`` in ``model`` into :class:`CastLinear` / :class:`CastRMSNorm`
    in place (the instances keep their parameters; only the class changes). Other layers (e.g. quantised ones) are
    left as they are. Returns the number of layers changed; calling it again changes none."""
    changed = 0
    for module in model.modules():
        new = _CLASSES.get(type(module))
        if new is not None:
            module.__class__ = new
            changed += 1
    return changed
