"""Build a module on the meta device and fill it from a :class:`~.source.TensorSource` without holding two copies.

One path for every source: the names are checked against the module's state dict, every ``nn.Linear`` whose weight
the source keeps block-quantised (:meth:`~.source.TensorSource.quantized_type`, GGUF only) becomes a
``gguf_loader.GGUFLinear`` holding the stored bytes, every ``nn.Linear`` stored FP8 / INT8 / NVFP4
(:func:`~.quant_plan.plan_quantised`) becomes a ``ltx.quant.QuantLinear`` holding the file's tensors, and every other
tensor is read straight into the target dtype and device. Mirrors
``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder.meta_model`` + ``build`` (meta construction, then
``load_state_dict(assign=True)``), with the tensors read lazily instead of a whole state dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import torch
from torch import nn

from ...gguf_loader import replace_linears
from ..errors import CheckpointError
from ..quant import replace_with_quant
from ..quant.formats import FORMATS
from ..quant.linear import buffer_name
from .quant_plan import QuantPlan, plan_quantised
from .source import TensorSource

M = TypeVar("M", bound=nn.Module)

_LIST = 8
_FP8_SUFFIXES = ("weight_scale", "input_scale", "scale_weight", "scale_input")
#: stored types (safetensors and GGML names) that cannot hold a floating-point weight
INTEGER_TYPES = frozenset({"BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64"})


def _names(keys: list[str]) -> str:
    shown = ", ".join(sorted(keys)[:_LIST])
    return shown + (f" … (+{len(keys) - _LIST} more)" if len(keys) > _LIST else "")


def check_names(module: nn.Module, source: TensorSource, names: Mapping[str, str], *, what: str,
                config_name: str = "config", dequantised: Mapping[str, tuple[int, ...]] | None = None) -> None:
    """Check that ``names`` (module name → source tensor name) covers exactly ``module``'s state dict with the
    right shapes.

    Args:
        module: the model, usually on the meta device.
        source: where the tensors come from (its ``tensors`` give the stored shapes; its ``name`` is in messages).
        names: module state-dict name → tensor name in ``source``.
        what: the component, for messages ("transformer", "video VAE decoder" …).
        config_name: how messages call the config the module was built from ("Gemma config (2 layers, …)").
        dequantised: module name → logical ``(out, in)`` of weights stored quantised that load dequantised (their
            shape is checked against this, and their integer storage is expected).

    Raises:
        CheckpointError: tensors are missing or unexpected (stray quantisation scales get their own message), have
            the wrong shape, or are floating-point weights stored as integers.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in names]
    unexpected = [k for k in names if k not in expected]
    if unexpected and any(k.endswith(_FP8_SUFFIXES) for k in unexpected):
        raise CheckpointError(f"{source.name}: the {what} holds quantisation scales for tensors that are not Linear "
                              f"weights of this model ({_names(unexpected)}). The file was converted for another "
                              "model; use the bf16 checkpoint or a GGUF quantisation.")
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s): {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s): {_names(unexpected)}")
        raise CheckpointError(f"{source.name}: the {what} does not match its {config_name} — {'; '.join(parts)}. "
                              "The file may be a different model variant or incomplete.")
    dequantised = dequantised or {}
    shapes = {k: tuple(dequantised.get(k, source.tensors[names[k]].shape)) for k in expected}
    bad = [f"{k}: file {shapes[k]} vs model {tuple(v.shape)}"
           for k, v in expected.items() if tuple(v.shape) != shapes[k]]
    if bad:
        raise CheckpointError(f"{source.name}: {len(bad)} tensor(s) of the {what} have the wrong shape: "
                              f"{'; '.join(bad[:4])}. The {config_name} does not describe this file (another model "
                              "variant, or 'config' metadata that does not belong to it).")
    ints = [f"{names[k]} ({source.tensors[names[k]].dtype})" for k, v in expected.items()
            if v.is_floating_point() and source.tensors[names[k]].dtype in INTEGER_TYPES and k not in dequantised]
    if ints:
        raise CheckpointError(f"{source.name}: {len(ints)} floating-point weight(s) of the {what} are stored as "
                              f"integers: {_names(ints)}. The file is corrupt; download it again.")


def _quantized_linears(module: nn.Module, source: TensorSource, names: Mapping[str, str]) -> dict[str, object]:
    """Module path → GGML type of every Linear whose weight ``source`` keeps block-quantised (stored as uint8
    blocks of shape ``(out, in_bytes)``)."""
    found = {}
    for path, child in module.named_modules():
        if isinstance(child, nn.Linear) and f"{path}.weight" in names:
            qtype = source.quantized_type(names[f"{path}.weight"])
            if qtype is not None:
                found[path] = qtype
    return found


def materialize(
    factory: Callable[[], M],
    source: TensorSource,
    names: Mapping[str, str],
    *,
    what: str,
    dtype: torch.dtype | None,
    device: torch.device | str,
    dequantize: bool = False,
    config_name: str = "config",
) -> M:
    """Construct ``factory()`` on meta, check ``names`` and tensor shapes against it (:func:`check_names`), then
    read the tensors one by one straight into ``dtype``/``device`` and assign them. Returns the module in eval mode
    without gradients.

    Mirrors ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder.meta_model`` + ``build``
    (``load_state_dict(strict=True, assign=True)``; ltx-core uses ``strict=False``).

    Args:
        factory: builds the empty module (called under ``torch.device("meta")``).
        source: any :class:`~.source.TensorSource`.
        names: module state-dict name → tensor name in ``source``.
        what: the component, for messages.
        dtype: floating dtype of the loaded tensors (None: as the source stores them).
        device: where the tensors go (quantised bytes too).
        dequantize: load weights the source keeps quantised as plain tensors instead of ``GGUFLinear`` /
            ``QuantLinear`` layers.
        config_name: how messages call the config (see :func:`check_names`).

    Raises:
        CheckpointError: the names do not match the module, a quantised layer is malformed
            (:func:`~.quant_plan.plan_quantised`), or a tensor cannot be read or dequantised.
    """
    device = torch.device(device)
    with torch.device("meta"):
        module = factory()
    plan = plan_quantised(module, source, names)
    names = plan.float_names() if dequantize else plan.names
    if not dequantize:
        replace_with_quant(module, plan.layers)
    logical = {f"{path}.weight": shape for path, shape in plan.shapes.items()} if dequantize else None
    check_names(module, source, names, what=what, config_name=config_name, dequantised=logical)
    quantized = {} if dequantize else _quantized_linears(module, source, names)
    replace_linears(module, quantized)
    plain: dict[str, str] = {}
    state: dict[str, torch.Tensor] = {}
    packed = {f"{path}.{buffer_name(part)}" for path, (_, parts, _) in plan.layers.items() for part in parts}
    if dequantize:
        state.update(_dequantized(source, plan, dtype=dtype, device=device))
    for target in module.state_dict():
        if target.endswith(".qweight") and target[: -len(".qweight")] in quantized:
            state[target] = source.read_quantized(names[target[: -len("qweight")] + "weight"], device=device)
        elif target in packed and not dequantize:
            state.update(source.read({target: names[target]}, dtype=None, device=device))
        elif target not in state:
            plain[target] = names[target]
    state.update(source.read(plain, dtype=dtype, device=device))
    module.load_state_dict(state, strict=True, assign=True)
    return module.eval().requires_grad_(False)


def _dequantized(source: TensorSource, plan: QuantPlan, *, dtype: torch.dtype | None,
                 device: torch.device) -> dict[str, torch.Tensor]:
    """``<path>.weight`` → the dequantised ``(out, in)`` weight (``dtype``, None: float32) of every planned layer,
    one layer at a time (``materialize(dequantize=True)``)."""
    out = {}
    for path, (fmt, parts, params) in plan.layers.items():
        stored = source.read({p: plan.names[f"{path}.{buffer_name(p)}"] for p in parts}, dtype=None, device=device)
        out[f"{path}.weight"] = FORMATS[fmt].dequantize(stored, params, plan.shapes[path], dtype or torch.float32)
    return out
