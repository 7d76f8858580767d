"""Build a module on the meta device and fill it from a checkpoint without ever holding two copies."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import CheckpointError
from .safetensors_file import SafetensorsFile

_LIST = 8
_FP8_SUFFIXES = ("weight_scale", "input_scale", "scale_weight", "scale_input")


def _names(keys: list[str]) -> str:
    shown = ", ".join(sorted(keys)[:_LIST])
    return shown + (f" … (+{len(keys) - _LIST} more)" if len(keys) > _LIST else "")


def check_names(module: nn.Module, file_shapes: dict[str, tuple[int, ...]], names: dict[str, str], *, what: str,
                file_name: str) -> None:
    """Raise a :class:`CheckpointError` unless ``names`` (module name → file key) covers exactly the module's state
    dict with the right shapes (FP8-scaled weights get their own message)."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in names]
    unexpected = [k for k in names if k not in expected]
    if unexpected and any(k.endswith(_FP8_SUFFIXES) for k in unexpected):
        raise CheckpointError(f"{file_name}: the {what} holds FP8-scaled weights ({_names(unexpected)}), "
                              "which RS-LTXV does not load yet. Use the bf16 checkpoint or a GGUF quantisation.")
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s): {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s): {_names(unexpected)}")
        raise CheckpointError(f"{file_name}: the {what} does not match its config — {'; '.join(parts)}. "
                              "The file may be a different model variant or incomplete.")
    bad = [f"{k}: file {file_shapes[names[k]]} vs model {tuple(v.shape)}"
           for k, v in expected.items() if tuple(v.shape) != tuple(file_shapes[names[k]])]
    if bad:
        raise CheckpointError(f"{file_name}: {len(bad)} tensor(s) of the {what} have the wrong shape: "
                              f"{'; '.join(bad[:4])}. The config does not describe this file (another model variant, "
                              "or 'config' metadata that does not belong to it).")


def materialize(
    factory: Callable[[], nn.Module],
    source: SafetensorsFile,
    names: dict[str, str],
    *,
    what: str,
    dtype: torch.dtype | None,
    device: torch.device,
) -> nn.Module:
    """Construct ``factory()`` on meta, check ``names`` (module name → file key) against its state dict, then read
    the tensors one by one straight into ``dtype``/``device`` and assign them. Returns the module in eval mode."""
    with torch.device("meta"):
        module = factory()
    check_names(module, {k: tuple(v.shape) for k, v in source.tensors.items()}, names, what=what,
                file_name=source.path.name)
    state = source.read(names, dtype=dtype, device=device)
    module.load_state_dict(state, strict=True, assign=True)
    return module.eval().requires_grad_(False)
