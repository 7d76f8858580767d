"""One plain LoRA on one weight (:class:`LoraPatch`) and its delta: the one place RS-LTXV does LoRA arithmetic.

The math is ComfyUI's for a plain LoRA (``comfy.weight_adapter.lora.LoRAAdapter.calculate_weight`` as called by
``comfy.lora.calculate_weight``): in float32, ``W + (strength · alpha / r) · (up @ down)``, then cast to the weight's
dtype. GGUF-quantised layers keep their packed weights and get that delta on every forward
(:class:`QuantisedLoraDelta`, added to the dequantised weight as ComfyUI-GGUF does).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LoraPatch:
    """One plain LoRA on one transformer weight: ``key`` names the parameter (``"transformer_blocks.0.attn1.to_q.
    weight"``), ``up`` ``(out, r)`` and ``down`` ``(r, in)`` its factors, ``alpha`` its stored alpha (None: scale 1,
    else ``alpha / r``) and ``strength`` the user's multiplier. Mirrors one ``"lora"`` entry of ComfyUI's
    ``ModelPatcher.patches`` (``comfy.lora.load_lora``)."""

    key: str
    up: torch.Tensor
    down: torch.Tensor
    alpha: float | None = None
    strength: float = 1.0

    @property
    def scale(self) -> float:
        """``alpha / r`` (``r`` = rows of ``down``), or 1 without an alpha."""
        return 1.0 if self.alpha is None else self.alpha / self.down.shape[0]

    def delta(self, device: torch.device | str | None = None) -> torch.Tensor:
        """``(strength · scale) · (up @ down)`` in float32 on ``device`` (default: the factors'), shape ``(out, in)``
        (ComfyUI's order of operations)."""
        up, down = self.up.to(device).float().flatten(1), self.down.to(device).float().flatten(1)
        return (self.strength * self.scale) * torch.mm(up, down)


def add_deltas(weight: torch.Tensor, patches: list[LoraPatch] | tuple[LoraPatch, ...]) -> torch.Tensor:
    """``weight`` (any float dtype, any shape of ``out · in`` values) plus every patch's delta, summed in order in
    float32: a new float32 tensor of ``weight``'s shape (``weight`` is not changed)."""
    out = weight.detach().float().clone()
    for p in patches:
        out += p.delta(out.device).reshape(out.shape)
    return out


class QuantisedLoraDelta:
    """A per-forward patch of a GGUF-quantised layer (an entry of ``GGUFLinear.patches``): ``f(base) -> delta`` on
    the dequantised float32 weight ``base`` ``(out, in)``, computed as ComfyUI's
    ``comfy.lora.calculate_weight(patches, base) - base`` (the same float32 rounding as a merged float layer). The
    factors follow ``base``'s device (moved once, then kept there)."""

    def __init__(self, patches: list[LoraPatch]) -> None:
        self.patches = list(patches)

    def __call__(self, base: torch.Tensor) -> torch.Tensor:
        """The delta for ``base`` ``(out, in)`` float32, same shape and device."""
        if any(p.up.device != base.device for p in self.patches):
            self.patches = [LoraPatch(p.key, p.up.to(base.device), p.down.to(base.device), p.alpha, p.strength)
                            for p in self.patches]
        return add_deltas(base, self.patches) - base
