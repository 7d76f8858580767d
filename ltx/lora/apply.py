"""LoRA files on an :class:`~rs_ltxv.ltx.transformer.LTXAVTransformer` without ComfyUI: read, apply, remove.

* Float layers: the weight is replaced by ``W + Σ strength · alpha / r · (up @ down)`` computed in float32 and cast
  back to ``W``'s dtype (:func:`~.patch.add_deltas`, ComfyUI's math). The original tensor is kept (not re-derived:
  subtracting the delta again would not give ``W`` back bit for bit), so :meth:`AppliedLoras.remove` restores it
  exactly; that costs the memory of the patched weights while the LoRA is applied.
* Quantised layers (``GGUFLinear``, ``QuantLinear``: FP8 / INT8 / NVFP4): the packed weight is never touched; a
  :class:`~.patch.QuantisedLoraDelta` joins the layer's ``patches`` and adds the delta to the dequantised weight on
  every forward; removing takes it out.
* Strength 0: the patch is skipped entirely (the file is still read and checked), so outputs stay bit-identical.
* A file none of whose layers is in the model is an :class:`InputError` listing some of its keys and the layouts
  expected (:data:`~.keys.EXPECTED`); a file of which only some layers match is applied with a ``UserWarning``
  listing the keys left out (as ComfyUI logs "lora key not loaded" and goes on) — e.g. a LoRA that also trains the
  text encoder, whose weights are not part of the transformer.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from ..errors import InputError
from ..quant.linear import is_quantised
from .keys import EXPECTED, match_layers, parse_lora_keys
from .patch import LoraPatch, QuantisedLoraDelta, add_deltas


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA file to apply: ``path`` (a ``.safetensors`` LoRA) and ``strength`` (any finite number; 1 = as trained,
    0 = off, negative = the opposite direction), like ComfyUI's ``LoraLoaderModelOnly`` ``strength_model``."""

    path: str
    strength: float = 1.0


#: what ``loras=`` arguments take: :class:`LoraSpec`, ``(path, strength)``, a bare path (strength 1) or a ready
#: :class:`LoraPatch`
LoraInput = LoraSpec | LoraPatch | tuple | str | os.PathLike


def as_lora_spec(item: LoraSpec | tuple | str | os.PathLike) -> LoraSpec:
    """``item`` as a checked :class:`LoraSpec`.

    Raises:
        InputError: not a spec / ``(path, strength)`` / path; the strength is not a finite number; no such file.
    """
    if isinstance(item, LoraSpec):
        path, strength = item.path, item.strength
    elif isinstance(item, (str, os.PathLike)):
        path, strength = item, 1.0
    elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], (str, os.PathLike)):
        path, strength = item
    else:
        raise InputError(f"A LoRA is given as LoraSpec(path, strength), (path, strength) or a path; got "
                         f"{type(item).__name__}.")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength):
        raise InputError(f"LoRA {path}: strength {strength!r} is not a finite number (1 = as trained, 0 = off).")
    if Path(path).is_dir():
        raise InputError(f"LoRA {path} is a folder; give a LoRA .safetensors file.")
    if not Path(path).is_file():
        raise InputError(f"LoRA {path}: no such file.")
    return LoraSpec(os.fspath(path), float(strength))


def _open(path: str):
    try:
        return safe_open(path, framework="pt")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"LoRA {path}: cannot read it as a .safetensors file "
                         f"({' '.join(str(exc).split())[:200]}).") from exc


def check_lora_file(path: str | os.PathLike) -> None:
    """Read a LoRA file's header only and check it holds plain LoRA pairs (no model needed: what a command line
    checks before loading anything).

    Raises:
        InputError: unreadable, another adapter kind, incomplete pairs or no LoRA pair (see
            :func:`~.keys.parse_lora_keys`).
    """
    with _open(os.fspath(path)) as f:
        parse_lora_keys(list(f.keys()), f"LoRA {Path(path).name}")


def read_lora(path: str | os.PathLike, model: nn.Module, strength: float = 1.0) -> tuple[LoraPatch, ...]:
    """The :class:`LoraPatch` es of one LoRA file for ``model`` (keys: the model's parameter names, factors as
    stored, on the CPU). ``model`` may be on the meta device (only its module names are read).

    Raises:
        InputError: the file is unreadable or not a plain LoRA, none of its layers is in ``model`` (the message
            lists some of its keys and the layouts expected), or a factor pair does not fit its weight (every
            message starts with the file's name).
    Warns:
        UserWarning: some of its keys patch nothing in ``model`` (listed).
    """
    path = os.fspath(path)
    name = Path(path).name
    with _open(path) as f:
        keys = list(f.keys())
        pairs, others = parse_lora_keys(keys, f"LoRA {name}")
        matched, unmatched = match_layers(pairs, model)
        if not matched:
            shown = ", ".join(p.up for p in unmatched[:5]) + (f" … ({len(unmatched)} layers)" if len(unmatched) > 5
                                                               else "")
            raise InputError(f"LoRA {name}: none of its layers is a layer of this transformer (keys like {shown}); "
                             f"expected {EXPECTED}. Is it a LoRA for another model?")
        left = [k for p in unmatched for k in (p.down, p.up, p.alpha) if k is not None] + others
        if left:
            warnings.warn(f"LoRA {name}: {len(left)} of its {len(keys)} keys patch nothing in this transformer and "
                          f"are left out: {', '.join(left[:10])}{' …' if len(left) > 10 else ''}", UserWarning,
                          stacklevel=2)
        patches = []
        for module, pair in matched.items():
            alpha = None if pair.alpha is None else float(f.get_tensor(pair.alpha).float().reshape(-1)[0])
            patches.append(LoraPatch(f"{module}.weight", f.get_tensor(pair.up), f.get_tensor(pair.down), alpha,
                                     float(strength)))
    try:  # shapes checked here, while the file is known: with several LoRAs the message names the one that fails
        check_lora_patches(model, patches)
    except InputError as exc:
        raise InputError(f"LoRA {name}: its patch for {str(exc).removeprefix('LoRA patch for ')}") from exc
    return tuple(patches)


def read_loras(model: nn.Module, loras: Iterable[LoraInput]) -> tuple[LoraPatch, ...]:
    """Every :class:`LoraPatch` of ``loras`` in order (files read with :func:`read_lora`; ready patches kept).

    Raises:
        InputError: as :func:`as_lora_spec` and :func:`read_lora`.
    """
    out: list[LoraPatch] = []
    for item in loras:
        if isinstance(item, LoraPatch):
            out.append(item)
        else:
            spec = as_lora_spec(item)
            out.extend(read_lora(spec.path, model, spec.strength))
    return tuple(out)


def _is_quantised(module: nn.Module | None) -> bool:
    """A quantised layer (``gguf_loader.GGUFLinear`` or ``ltx.quant.QuantLinear``: :func:`~..quant.is_quantised`)."""
    return is_quantised(module)


@dataclass
class AppliedLoras:
    """What :func:`apply_lora_patches` changed, to undo it: the original tensors of merged float weights and the
    delta objects attached to quantised layers."""

    originals: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (parameter, its old data)
    deltas: list[tuple[nn.Module, QuantisedLoraDelta]] = field(default_factory=list)

    def remove(self) -> None:
        """Restore every weight bit for bit (moved to the weight's current device if the model moved since) and
        detach the quantised layers' deltas. Removing twice does nothing."""
        for target, old in reversed(self.originals):
            target.data = old.to(target.device)
        for module, delta in self.deltas:
            module.patches[:] = [p for p in module.patches if p is not delta]
        self.originals.clear()
        self.deltas.clear()


def _check(model: nn.Module, key: str, patches: list[LoraPatch]) -> tuple[nn.Module | None, torch.Tensor | None]:
    """(quantised module, None) or (None, float weight tensor) that the patches of ``key`` change.

    Raises:
        InputError: no such weight, or a patch's ``up @ down`` does not have its shape.
    """
    owner, _, attr = key.rpartition(".")
    try:
        module = model.get_submodule(owner)
    except AttributeError:
        module = None
    if module is not None and _is_quantised(module) and attr == "weight":
        target, shape = None, tuple(module.weight_shape)
    else:
        target = getattr(module, attr, None) if module is not None else None
        if not isinstance(target, torch.Tensor):
            raise InputError(f"LoRA patch for {key!r}: the transformer has no such weight; the LoRA was made for "
                             "another model.")
        shape = tuple(target.shape)
    for p in patches:
        fits = p.up.ndim >= 2 and p.down.ndim >= 2 and p.up.flatten(1).shape[1] == p.down.shape[0]
        if not fits or p.up.shape[0] * p.down.flatten(1).shape[1] != torch.Size(shape).numel():
            raise InputError(f"LoRA patch for {key!r}: up {tuple(p.up.shape)} @ down {tuple(p.down.shape)} does not "
                             f"fit the weight {shape}; the LoRA was made for another model.")
    return (module, None) if target is None else (None, target)


def check_lora_patches(model: nn.Module, patches: Sequence[LoraPatch]) -> None:
    """Check that every patch names a weight of ``model`` of its shape, changing nothing (works on a meta-device
    model).

    Raises:
        InputError: as :func:`apply_lora_patches`.
    """
    by_key: dict[str, list[LoraPatch]] = defaultdict(list)
    for p in patches:
        by_key[p.key].append(p)
    for key, group in by_key.items():
        _check(model, key, group)


def apply_lora_patches(model: nn.Module, patches: Sequence[LoraPatch]) -> AppliedLoras:
    """Add every patch to its weight (see the module docstring); patches of one key are summed in order, patches of
    strength 0 are skipped. Everything is checked before any weight changes. Returns the handle that removes them.

    Raises:
        InputError: a patch names no weight of ``model``, or its ``up @ down`` does not have the weight's shape.
    """
    check_lora_patches(model, patches)
    by_key: dict[str, list[LoraPatch]] = defaultdict(list)
    for p in patches:
        if p.strength != 0:
            by_key[p.key].append(p)
    applied = AppliedLoras()
    for key, group in by_key.items():
        module, target = _check(model, key, group)
        if module is not None:
            delta = QuantisedLoraDelta(group)
            module.patches.append(delta)
            applied.deltas.append((module, delta))
            continue
        old = target.data
        target.data = add_deltas(old, group).to(old.dtype)
        applied.originals.append((target, old))
    return applied


def apply_loras(model: nn.Module, loras: Iterable[LoraInput]) -> AppliedLoras:
    """Read LoRA files (or take ready patches) and apply them to ``model``: ``apply_loras(transformer,
    [LoraSpec("style.safetensors", 0.8), ("detail.safetensors", 0.5)])``. ``handle.remove()`` undoes it.

    Raises:
        InputError: as :func:`read_loras` and :func:`apply_lora_patches`; nothing is changed then.
    Warns:
        UserWarning: a file's keys that patch nothing (see :func:`read_lora`).
    """
    return apply_lora_patches(model, read_loras(model, loras))
