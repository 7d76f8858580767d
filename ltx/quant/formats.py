"""Quantised Linear-weight formats as data: name → :class:`QuantFormat` (:data:`FORMATS`).

Each entry says which tensors a layer stores beside ``weight`` (``parts``), which stored dtypes ``weight`` may have,
which shapes every part must have for an ``(out, in)`` layer, and how to turn the stored tensors into the float
weight (``dequantize``). :mod:`.detect` decides the format of each layer of a file; :class:`~.linear.QuantLinear`
keeps the stored tensors and calls ``dequantize`` on each forward.

=================  ======================================================  ==================================
format             stored tensors (``<layer>.``…)                           weight
=================  ======================================================  ==================================
``float8_e4m3fn``  ``weight`` F8_E4M3 ``(out, in)``, ``weight_scale``        ``weight.float() · weight_scale``
                   ``()`` / ``(1,)`` per tensor or ``(out,)`` / ``(out, 1)``
                   per row, optional ``input_scale`` (kept, unused: the
                   activations are not quantised on the dequantise path)
``float8_e5m2``    the same with F8_E5M2
``int8_tensorwise`` ``weight`` I8 ``(out, in)``, ``weight_scale`` per tensor  ``rot(weight · weight_scale)``
                   or per row; ``comfy_quant`` ``convrot`` /                 (:func:`~.hadamard.rotate_groups`
                   ``convrot_groupsize`` for ConvRot files                   when ``convrot``)
``nvfp4``          ``weight`` U8 ``(out, in / 2)``, ``weight_scale`` F8_E4M3  :func:`~.nvfp4.decode`
                   block scales (cuBLAS layout), ``weight_scale_2`` F32
=================  ======================================================  ==================================

Official LTX FP8 files (``ltx-2.3-22b-dev-fp8``: ``weight_scale`` + ``input_scale``), ComfyUI ``scaled_fp8`` files
(``scale_weight`` / ``scale_input`` + a ``scaled_fp8`` marker tensor) and ``comfy_quant`` files all map onto these
entries; GGUF layers are ``gguf_loader.GGUFLinear``, the same family (:class:`~.linear.QuantLinear`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from . import nvfp4
from .hadamard import rotate_groups

#: a layer's stored tensors by part name ("weight", "weight_scale" …)
Parts = Mapping[str, torch.Tensor]
Shape = tuple[int, ...]


def _scale(parts: Parts, rows: int) -> torch.Tensor:
    """``weight_scale`` as float32 broadcastable over ``(rows, in)``: ``()`` or ``(rows, 1)``."""
    scale = parts["weight_scale"].float()
    return scale.reshape(()) if scale.numel() == 1 else scale.reshape(rows, 1)


def _fp8(parts: Parts, params: Mapping[str, Any], shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    weight = parts["weight"].float()
    if "weight_scale" in parts:
        weight = weight * _scale(parts, shape[0])
    return weight.to(dtype)


def _int8(parts: Parts, params: Mapping[str, Any], shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    weight = parts["weight"].float() * _scale(parts, shape[0])
    if params.get("convrot"):
        weight = rotate_groups(weight, int(params.get("convrot_groupsize", 256)))
    return weight.to(dtype)


def _nvfp4(parts: Parts, params: Mapping[str, Any], shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    return nvfp4.decode(parts["weight"], parts["weight_scale"], parts["weight_scale_2"], shape, dtype)


def _scale_shapes(out: int, inp: int) -> tuple[Shape, ...]:
    return ((), (1,), (out,), (out, 1))


def _nvfp4_shapes(out: int, inp: int) -> dict[str, tuple[Shape, ...]]:
    rows, cols = nvfp4.ceil_to(out, 16), nvfp4.ceil_to(inp, 16)
    grid = nvfp4.scale_grid(rows, cols)
    return {"weight": ((rows, cols // 2),), "weight_scale": (grid, (math.prod(grid),)), "weight_scale_2": ((), (1,))}


def _scaled_shapes(out: int, inp: int) -> dict[str, tuple[Shape, ...]]:
    return {"weight": ((out, inp),), "weight_scale": _scale_shapes(out, inp), "input_scale": ((), (1,))}


@dataclass(frozen=True)
class QuantFormat:
    """One quantised weight format.

    Attributes:
        name: the ``comfy_quant`` format name (also used in ``info`` and messages).
        weight_dtypes: stored dtype names ``weight`` may have (safetensors names: "F8_E4M3", "I8", "U8").
        required: parts that must be stored beside ``weight``.
        optional: parts that may be stored (kept as buffers; e.g. ``input_scale``).
        shapes: ``(out, in)`` → part → the shapes it may have.
        dequantize: ``(parts, params, (out, in), dtype)`` → the ``(out, in)`` weight in ``dtype``.
        description: one line for ``info``.
    """

    name: str
    weight_dtypes: frozenset[str]
    required: tuple[str, ...]
    optional: tuple[str, ...]
    shapes: Callable[[int, int], dict[str, tuple[Shape, ...]]]
    dequantize: Callable[[Parts, Mapping[str, Any], tuple[int, int], torch.dtype], torch.Tensor]
    description: str

    @property
    def parts(self) -> tuple[str, ...]:
        """Every part the format may store: ``weight``, the required, then the optional ones."""
        return ("weight", *self.required, *self.optional)


FORMATS: dict[str, QuantFormat] = {f.name: f for f in (
    QuantFormat("float8_e4m3fn", frozenset({"F8_E4M3"}), ("weight_scale",), ("input_scale",), _scaled_shapes, _fp8,
                "FP8 e4m3 × scale (per tensor or per row)"),
    QuantFormat("float8_e5m2", frozenset({"F8_E5M2"}), ("weight_scale",), ("input_scale",), _scaled_shapes, _fp8,
                "FP8 e5m2 × scale (per tensor or per row)"),
    QuantFormat("int8_tensorwise", frozenset({"I8"}), ("weight_scale",), ("input_scale",), _scaled_shapes, _int8,
                "INT8 × scale (per tensor or per row), optional ConvRot Hadamard rotation"),
    QuantFormat("nvfp4", frozenset({"U8"}), ("weight_scale", "weight_scale_2"), ("input_scale",),
                lambda o, i: {**_nvfp4_shapes(o, i), "input_scale": ((), (1,))}, _nvfp4,
                "NVFP4: e2m1 values, FP8 block scales per 16 values, global scale"),
    # FP8 without a scale (ComfyUI "fp8_e4m3fn" weight dtype files): plain casts
    QuantFormat("float8_e4m3fn_unscaled", frozenset({"F8_E4M3"}), (), (), _scaled_shapes, _fp8,
                "FP8 e4m3, no scale (plain cast)"),
    QuantFormat("float8_e5m2_unscaled", frozenset({"F8_E5M2"}), (), (), _scaled_shapes, _fp8,
                "FP8 e5m2, no scale (plain cast)"),
)}

#: the stored dtype of FP8 weights → (scaled format, unscaled format)
FP8_BY_DTYPE: dict[str, tuple[str, str]] = {"F8_E4M3": ("float8_e4m3fn", "float8_e4m3fn_unscaled"),
                                            "F8_E5M2": ("float8_e5m2", "float8_e5m2_unscaled")}
