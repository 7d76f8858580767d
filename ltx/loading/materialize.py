"""Build a module on the meta device and fill it from a :class:`~.source.TensorSource` without holding two copies.

One path for every source: the names are checked against the module's state dict, every ``nn.Linear`` whose weight
the source keeps block-quantised (:meth:`~.source.TensorSource.quantized_type`, GGUF only) becomes a
``gguf_loader.GGUFLinear`` holding the stored bytes, and every other tensor is read straight into the target dtype and
device. Mirrors ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder.meta_model`` + ``build`` (meta
construction, then ``load_state_dict(assign=True)``), with the tensors read lazily instead of a whole state dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import torch
from torch import nn

from ...gguf_loader import replace_linears
from ..errors import CheckpointError
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
                config_name: str = "config") -> None:
    """Check that ``names`` (module name → source tensor name) covers exactly ``module``'s state dict with the
    right shapes.

    Args:
        module: the model, usually on the meta device.
        source: where the tensors come from (its ``tensors`` give the stored shapes; its ``name`` is in messages).
        names: module state-dict name → tensor name in ``source``.
        what: the component, for messages ("transformer", "video VAE decoder" …).
        config_name: how messages call the config the module was built from ("Gemma config (2 layers, …)").

    Raises:
        CheckpointError: tensors are missing or unexpected (FP8-scaled weights get their own message), have the
            wrong shape, or are floating-point weights stored as integers.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in names]
    unexpected = [k for k in names if k not in expected]
    if unexpected and any(k.endswith(_FP8_SUFFIXES) for k in unexpected):
        raise CheckpointError(f"{source.name}: the {what} holds FP8-scaled weights ({_names(unexpected)}), "
                              "which RS-LTXV does not load yet. Use the bf16 checkpoint or a GGUF quantisation.")
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s): {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s): {_names(unexpected)}")
        raise CheckpointError(f"{source.name}: the {what} does not match its {config_name} — {'; '.join(parts)}. "
                              "The file may be a different model variant or incomplete.")
    shapes = {k: tuple(source.tensors[names[k]].shape) for k in expected}
    bad = [f"{k}: file {shapes[k]} vs model {tuple(v.shape)}"
           for k, v in expected.items() if tuple(v.shape) != shapes[k]]
    if bad:
        raise CheckpointError(f"{source.name}: {len(bad)} tensor(s) of the {what} have the wrong shape: "
                              f"{'; '.join(bad[:4])}. The {config_name} does not describe this file (another model "
                              "variant, or 'config' metadata that does not belong to it).")
    ints = [f"{names[k]} ({source.tensors[names[k]].dtype})" for k, v in expected.items()
            if v.is_floating_point() and source.tensors[names[k]].dtype in INTEGER_TYPES]
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
        dequantize: load weights the source keeps quantised as plain tensors instead of ``GGUFLinear`` layers.
        config_name: how messages call the config (see :func:`check_names`).

    Raises:
        CheckpointError: the names do not match the module, or a tensor cannot be read or dequantised.
    """
    device = torch.device(device)
    with torch.device("meta"):
        module = factory()
    check_names(module, source, names, what=what, config_name=config_name)
    quantized = {} if dequantize else _quantized_linears(module, source, names)
    replace_linears(module, quantized)
    plain: dict[str, str] = {}
    state: dict[str, torch.Tensor] = {}
    for target in module.state_dict():
        if target.endswith(".qweight") and target[: -len(".qweight")] in quantized:
            state[target] = source.read_quantized(names[target[: -len("qweight")] + "weight"], device=device)
        else:
            plain[target] = names[target]
    state.update(source.read(plain, dtype=dtype, device=device))
    module.load_state_dict(state, strict=True, assign=True)
    return module.eval().requires_grad_(False)
