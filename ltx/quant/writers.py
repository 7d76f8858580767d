"""Quantise float weights into the stored layouts :mod:`.formats` reads: what converters write, for tests, the
benchmark and tiny demo files (``quantise_state_dict``).

Layouts (:data:`LAYOUTS`, each a function ``(float weight (out, in), layer key) → {key: tensor}``):

* ``official_fp8`` / ``official_fp8_rowwise``: ``weight`` float8_e4m3fn, ``weight_scale`` float32 ``()`` (per
  tensor, ltx-core ``quantize_weight_to_fp8_per_tensor``: ``amax / 448``) or ``(out,)`` (per row), ``input_scale``
  ``()`` (1.0 here; a real calibration would store the activation amax / 448).
* ``official_fp8_e5m2``: the same in float8_e5m2 (``amax / 57344``).
* ``scaled_fp8``: ComfyUI's older layout: ``weight`` e4m3, ``scale_weight`` ``()`` (the marker tensor
  ``scaled_fp8`` is added once per file by :func:`quantise_state_dict`).
* ``comfy_fp8`` / ``comfy_int8`` / ``comfy_int8_convrot`` / ``comfy_nvfp4``: ``comfy_quant`` per-layer JSON
  (uint8 bytes) + the format's tensors (comfy-kitchen ``TensorCoreFP8Layout``, ``TensorWiseINT8Layout``
  per-row with optional ConvRot, ``TensorCoreNVFP4Layout``: padded to 16, high nibble first, blocked scales).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import torch

from . import nvfp4
from .hadamard import rotate_groups

F8_MAX = {torch.float8_e4m3fn: 448.0, torch.float8_e5m2: 57344.0}
CONVROT_GROUP = 16  # the published files use 256; tiny models need a group that divides their widths


def comfy_quant_tensor(config: Mapping[str, object]) -> torch.Tensor:
    """A layer's ``comfy_quant`` tensor: the JSON text's UTF-8 bytes as uint8 ``(n,)``."""
    return torch.tensor(list(json.dumps(dict(config)).encode("utf-8")), dtype=torch.uint8)


def _fp8(w: torch.Tensor, dtype: torch.dtype, rowwise: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    w = w.float()
    amax = w.abs().amax(dim=1) if rowwise else w.abs().amax()
    scale = (amax / F8_MAX[dtype]).clamp(min=1e-12)
    q = (w / (scale[:, None] if rowwise else scale)).clamp(-F8_MAX[dtype], F8_MAX[dtype]).to(dtype)
    return q, scale.float()


def _int8(w: torch.Tensor, group: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    w = rotate_groups(w.float(), group) if group else w.float()
    scale = (w.abs().amax(dim=1, keepdim=True) / 127.0).clamp(min=1e-12)
    return (w / scale).round().clamp(-127, 127).to(torch.int8), scale


def _nvfp4(w: torch.Tensor) -> dict[str, torch.Tensor]:
    out, inp = w.shape
    padded = torch.zeros(nvfp4.ceil_to(out, 16), nvfp4.ceil_to(inp, 16))
    padded[:out, :inp] = w.float()
    blocks = padded.reshape(padded.shape[0], -1, nvfp4.BLOCK)
    global_scale = (padded.abs().amax() / (448.0 * 6.0)).clamp(min=1e-12)
    block = (blocks.abs().amax(dim=-1) / 6.0 / global_scale).to(torch.float8_e4m3fn)
    total = block.float() * global_scale
    scaled = blocks / torch.where(total == 0, torch.ones_like(total), total).unsqueeze(-1)
    table = torch.tensor(nvfp4.E2M1_VALUES[:8])
    mags = (scaled.abs().unsqueeze(-1) - table).abs().argmin(dim=-1)  # nearest magnitude code 0..7
    codes = (mags + 8 * (scaled < 0)).to(torch.uint8).reshape(padded.shape)
    packed = (codes[:, 0::2] << 4) | codes[:, 1::2]
    return {"weight": packed, "weight_scale": nvfp4.block_scales(block), "weight_scale_2": global_scale.float()}


def _official(dtype: torch.dtype, rowwise: bool = False) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    def write(w: torch.Tensor) -> dict[str, torch.Tensor]:
        q, scale = _fp8(w, dtype, rowwise)
        return {"weight": q, "weight_scale": scale, "input_scale": torch.tensor(1.0)}
    return write


def _comfy(config: dict[str, object], write: Callable[[torch.Tensor], dict[str, torch.Tensor]]
           ) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    return lambda w: {**write(w), "comfy_quant": comfy_quant_tensor(config)}


def _pair(write: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
          names: tuple[str, str]) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    return lambda w: dict(zip(names, write(w), strict=True))


#: layout name → ``float weight (out, in)`` → ``{suffix: tensor}`` for ``<layer>.<suffix>``
LAYOUTS: dict[str, Callable[[torch.Tensor], dict[str, torch.Tensor]]] = {
    "official_fp8": _official(torch.float8_e4m3fn),
    "official_fp8_rowwise": _official(torch.float8_e4m3fn, rowwise=True),
    "official_fp8_e5m2": _official(torch.float8_e5m2),
    "scaled_fp8": _pair(lambda w: _fp8(w, torch.float8_e4m3fn), ("weight", "scale_weight")),
    "comfy_fp8": _comfy({"format": "float8_e4m3fn"},
                        _pair(lambda w: _fp8(w, torch.float8_e4m3fn), ("weight", "weight_scale"))),
    "comfy_int8": _comfy({"format": "int8_tensorwise"}, _pair(lambda w: _int8(w, None), ("weight", "weight_scale"))),
    "comfy_int8_convrot": _comfy({"format": "int8_tensorwise", "convrot": True, "convrot_groupsize": CONVROT_GROUP},
                                 _pair(lambda w: _int8(w, CONVROT_GROUP), ("weight", "weight_scale"))),
    "comfy_nvfp4": _comfy({"format": "nvfp4"}, _nvfp4),
}
#: which float weights each layout can hold (``(out, in)`` → bool); the others stay as they are. NVFP4 takes only
#: widths that need no padding, since padding cannot be told from the stored shapes (``logical_infos``)
FITS: dict[str, Callable[[tuple[int, int]], bool]] = {
    "comfy_int8_convrot": lambda shape: shape[1] % CONVROT_GROUP == 0,
    "comfy_nvfp4": lambda shape: shape[0] % 16 == 0 and shape[1] % 16 == 0,
}


def quantise_state_dict(state: Mapping[str, torch.Tensor], layout: str,
                        select: Callable[[str, torch.Tensor], bool] | None = None) -> dict[str, torch.Tensor]:
    """``state`` with every selected 2-D ``….weight`` (default: all that :data:`FITS` the layout) replaced by its
    ``layout`` tensors; a ``scaled_fp8`` layout also gets its marker tensor (``model.diffusion_model.scaled_fp8``,
    an empty e4m3 tensor, as ComfyUI writes it).

    Raises:
        KeyError: unknown ``layout``.
    """
    write, fits = LAYOUTS[layout], FITS.get(layout, lambda shape: True)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        chosen = (key.endswith(".weight") and tensor.ndim == 2 and fits(tuple(tensor.shape))
                  and (select is None or select(key, tensor)))
        if not chosen:
            out[key] = tensor
            continue
        layer = key[: -len(".weight")]
        out.update({f"{layer}.{suffix}": t.contiguous() for suffix, t in write(tensor).items()})
    if layout == "scaled_fp8":
        out["model.diffusion_model.scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    return out
