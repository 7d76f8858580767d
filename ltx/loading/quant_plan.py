"""Which Linear layers of a file are stored quantised, in which ``ltx.quant.formats.FORMATS`` entry, and under
which file keys: :func:`plan_quantised`.

How a layer's format is told, first match wins:

1. a ``comfy_quant`` description: the per-layer ``<layer>.comfy_quant`` tensor (uint8 bytes of a JSON object
   ``{"format": …, "convrot": …, "convrot_groupsize": …}``) or the file's ``_quantization_metadata`` JSON
   (``{"layers": {<layer>: {…}}}``), as ComfyUI ``comfy.utils.convert_old_quants`` reads them;
2. an FP8 ``weight`` (F8_E4M3 / F8_E5M2): scaled when a scale is stored beside it — ``weight_scale`` (official LTX
   files, ``input_scale`` beside it) or ``scale_weight`` (ComfyUI ``scaled_fp8`` files, ``scale_input`` beside it,
   plus a top-level ``scaled_fp8`` marker tensor) — else a plain cast (scale 1).

A file that stores scales (or the ``scaled_fp8`` marker) but lacks one for some FP8 layer is refused, as is a
``comfy_quant`` format this table does not know, and any stored tensor whose shape does not fit the layer
(a truncated or foreign quantised tensor).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..quant.formats import FORMATS, FP8_BY_DTYPE
from ..quant.linear import buffer_name
from .source import DTYPES, TensorInfo, TensorSource, read_device

#: stored suffix → part name of ``QuantLinear`` (ComfyUI ``scaled_fp8`` names → comfy_quant names)
PART_ALIASES: dict[str, str] = {"weight_scale": "weight_scale", "scale_weight": "weight_scale",
                                "weight_scale_2": "weight_scale_2", "input_scale": "input_scale",
                                "scale_input": "input_scale"}
#: per-layer description tensor and file-wide marker tensors (read, then dropped from the names)
LAYER_MARKER = "comfy_quant"
FILE_MARKERS = ("scaled_fp8",)
QUANT_METADATA = "_quantization_metadata"


@dataclass
class QuantPlan:
    """The result of :func:`plan_quantised`.

    Attributes:
        layers: module path → ``(format name, {part: (stored shape, torch dtype)}, params)``
            (the arguments of :class:`~rs_ltxv.ltx.quant.linear.QuantLinear`).
        names: the names to load: module state-dict name → file key, with every quantised part under its
            ``QuantLinear`` buffer name (``qweight`` for the packed weight) and the marker tensors left out.
        shapes: module path → the logical weight shape ``(out, in)`` of each quantised layer.
    """

    layers: dict[str, tuple[str, dict[str, tuple[tuple[int, ...], torch.dtype]], dict[str, Any]]] = \
        field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    shapes: dict[str, tuple[int, int]] = field(default_factory=dict)

    def float_names(self) -> dict[str, str]:
        """:attr:`names` for a model that keeps plain ``nn.Linear`` layers (``materialize(dequantize=True)``): the
        quantised layers' scale parts left out (their ``weight`` is dequantised from all parts)."""
        out = {}
        for name, key in self.names.items():
            path, _, buffer = name.rpartition(".")
            stored = {buffer_name(p) for p in self.layers[path][1]} if path in self.layers else set()
            if buffer == buffer_name("weight") and stored:
                out[f"{path}.weight"] = key
            elif buffer not in stored:
                out[name] = key  # plain tensors, biases
        return out


def _json(raw: str | bytes, where: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{where} is not valid JSON ({exc}). The file is corrupt; convert it again.") from exc


def layer_configs(source: TensorSource, names: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Module path → the layer's ``comfy_quant`` dict, from ``<path>.comfy_quant`` tensors among ``names`` (uint8
    JSON bytes, shape ``(n,)``) and the file's ``_quantization_metadata`` (whose layer names are file keys without
    ``.weight``).

    Raises:
        CheckpointError: a description is not a JSON object with a ``format``.
    """
    configs: dict[str, dict[str, Any]] = {}
    markers = {n[: -len(LAYER_MARKER) - 1]: k for n, k in names.items() if n.endswith("." + LAYER_MARKER)}
    if markers:
        raw = source.read({p: k for p, k in markers.items()}, dtype=None, device=read_device("cpu"))
        for path, tensor in raw.items():
            configs[path] = _json(tensor.to(torch.uint8).numpy().tobytes(), f"{source.name}: {markers[path]}")
    if QUANT_METADATA in source.metadata:
        table = _json(source.metadata[QUANT_METADATA], f"{source.name}: metadata {QUANT_METADATA}")
        by_key = {k[: -len(".weight")]: n[: -len(".weight")] for n, k in names.items() if n.endswith(".weight")}
        for layer, conf in (table.get("layers", {}) if isinstance(table, dict) else {}).items():
            if layer in by_key:
                configs.setdefault(by_key[layer], conf)
    for path, conf in configs.items():
        if not isinstance(conf, dict) or not isinstance(conf.get("format"), str):
            raise CheckpointError(f"{source.name}: the comfy_quant description of {path} ({conf!r}) has no "
                                  "'format'. The file is corrupt; convert it again.")
    return configs


def _format_of(path: str, conf: dict[str, Any] | None, dtype: str, has_scale: bool, scaled_file: bool,
               source: TensorSource) -> str | None:
    """The :data:`FORMATS` name of one Linear layer, None when it is not quantised."""
    if conf is not None:
        name = conf["format"]
        if name not in FORMATS or name.endswith("_unscaled"):
            known = ", ".join(n for n in FORMATS if not n.endswith("_unscaled"))
            raise CheckpointError(f"{source.name}: layer {path} uses the comfy_quant format '{name}', which RS-LTXV "
                                  f"does not load (known: {known}). Use a file in one of those formats, bf16 or GGUF.")
        return name
    if dtype not in FP8_BY_DTYPE:
        return None
    scaled, unscaled = FP8_BY_DTYPE[dtype]
    if has_scale or not scaled_file:
        return scaled if has_scale else unscaled
    raise CheckpointError(f"{source.name}: the FP8 weight of {path} has no scale tensor ('weight_scale' or "
                          "'scale_weight') although the file's other FP8 layers are scaled. The file is incomplete "
                          "or damaged; download it again.")


def _parts(path: str, fmt_name: str, names: Mapping[str, str], source: TensorSource,
           out: int, inp: int) -> tuple[dict[str, str], dict[str, tuple[tuple[int, ...], torch.dtype]]]:
    """(part → file key, part → (shape, dtype)) of one layer, checked against the format.

    Raises:
        CheckpointError: a required part is missing, the weight's dtype is not the format's, or a part's shape
            does not fit an ``out × inp`` layer.
    """
    fmt = FORMATS[fmt_name]
    keys = {"weight": names[f"{path}.weight"]}
    for suffix, part in PART_ALIASES.items():
        if f"{path}.{suffix}" in names and part in fmt.parts:
            keys[part] = names[f"{path}.{suffix}"]
    missing = [p for p in fmt.required if p not in keys]
    if missing:
        raise CheckpointError(f"{source.name}: the {fmt_name} layer {path} has no {' / '.join(missing)} tensor. "
                              "The file is incomplete or damaged; download or convert it again.")
    infos = {p: source.tensors[k] for p, k in keys.items()}
    if infos["weight"].dtype not in fmt.weight_dtypes:
        raise CheckpointError(f"{source.name}: the {fmt_name} weight {keys['weight']} is stored as "
                              f"{infos['weight'].dtype}, not {' / '.join(sorted(fmt.weight_dtypes))}. The file's "
                              "quantisation description does not match its tensors; convert it again.")
    allowed = fmt.shapes(out, inp)
    for part, info in infos.items():
        if tuple(info.shape) not in allowed[part]:
            raise CheckpointError(
                f"{source.name}: {keys[part]} has shape {tuple(info.shape)}, but the {fmt_name} {part} of a "
                f"{out}×{inp} layer is {' or '.join(str(s) for s in allowed[part])}. The quantised tensor is "
                "truncated or belongs to another model; download or convert the file again.")
    return keys, {p: (tuple(i.shape), DTYPES[i.dtype]) for p, i in infos.items()}


def plan_quantised(module: nn.Module, source: TensorSource, names: Mapping[str, str]) -> QuantPlan:
    """Find the quantised Linear layers of ``module`` (usually on meta) in ``source`` (module name → file key in
    ``names``) and rename their parts; everything else passes through unchanged.

    Raises:
        CheckpointError: see the module docstring (unknown comfy_quant format, missing scale, wrong shapes).
    """
    configs = layer_configs(source, names)
    scaled_file = any(n.endswith((".weight_scale", ".scale_weight")) for n in names) or any(
        n.rpartition(".")[2] in FILE_MARKERS for n in names)
    plan = QuantPlan()
    taken: set[str] = set()
    for path, child in module.named_modules():
        if not isinstance(child, nn.Linear) or f"{path}.weight" not in names:
            continue
        info = source.tensors[names[f"{path}.weight"]]
        has_scale = any(f"{path}.{s}" in names for s in ("weight_scale", "scale_weight"))
        fmt = _format_of(path, configs.get(path), info.dtype, has_scale, scaled_file, source)
        if fmt is None and has_scale:
            raise CheckpointError(f"{source.name}: {path} has a quantisation scale but its weight is stored as "
                                  f"{info.dtype}, not FP8, and no comfy_quant description says how to use it. The "
                                  "file mixes two conversions or is damaged; use the bf16 checkpoint or convert again.")
        if fmt is None:
            continue
        keys, parts = _parts(path, fmt, names, source, child.out_features, child.in_features)
        params = {k: v for k, v in configs.get(path, {}).items() if k != "format"}
        plan.layers[path] = (fmt, parts, params)
        plan.shapes[path] = (child.out_features, child.in_features)
        plan.names.update({f"{path}.{buffer_name(p)}": k for p, k in keys.items()})
        taken.update(keys.values())
        taken.update(names[f"{path}.{s}"] for s in (*PART_ALIASES, LAYER_MARKER) if f"{path}.{s}" in names)
    for name, key in names.items():
        marker = name.rpartition(".")[2] in FILE_MARKERS or name.endswith("." + LAYER_MARKER)
        if key not in taken and not marker:
            plan.names[name] = key
    return plan


def format_counts(source: TensorSource) -> dict[str, int]:
    """Format name → number of Linear weights stored in it, told from names, stored dtypes and ``comfy_quant``
    descriptions alone (for ``info``; no tensor data is read, so shapes do not matter). Plain (bf16/fp16/fp32)
    weights are not counted."""
    names = {k: k for k in source.tensors}
    configs = layer_configs(source, names)
    scaled = {k.rpartition(".")[0] for k in names if k.endswith((".weight_scale", ".scale_weight"))}
    counts: dict[str, int] = {}
    for key, info in source.tensors.items():
        if not key.endswith(".weight"):
            continue
        layer = key[: -len(".weight")]
        if layer in configs:
            fmt = str(configs[layer]["format"])
            fmt += " + ConvRot" if configs[layer].get("convrot") else ""
        elif info.dtype in FP8_BY_DTYPE:
            fmt = FP8_BY_DTYPE[info.dtype][0 if layer in scaled else 1]
        else:
            continue
        counts[fmt] = counts.get(fmt, 0) + 1
    return counts


def logical_infos(infos: Mapping[str, TensorInfo]) -> dict[str, TensorInfo]:
    """``infos`` (name → :class:`~.source.TensorInfo` of one component) with every NVFP4 ``….weight`` (uint8 beside a
    ``….weight_scale_2``) given its logical shape ``(out, 2 · packed columns)``, so configs are inferred from
    shapes as for float files (a converter's zero padding to 16 columns cannot be seen; LTX widths are multiples
    of 16)."""
    out = dict(infos)
    for name, info in infos.items():
        layer = name[: -len(".weight")]
        if name.endswith(".weight") and info.dtype == "U8" and f"{layer}.weight_scale_2" in infos and \
                len(info.shape) == 2:
            out[name] = TensorInfo(info.dtype, (info.shape[0], info.shape[1] * 2), info.nbytes)
    return out
