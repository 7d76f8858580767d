"""How a worker builds its own copy of the transformer: a :class:`LoadRecipe` (checkpoint path, dtype, LoRA patches)
sent once; the weights themselves never travel, each worker memory-maps the file.

LoRA patches are applied as ComfyUI's ``comfy.lora.calculate_weight`` applies a plain LoRA
(``comfy.weight_adapter.lora.LoRAAdapter.calculate_weight``): in float32,
``W + (strength · alpha / r) · (up @ down)``, then cast to the weight's dtype. GGUF-quantised layers keep their packed
weights and get the delta on every forward (their ``patches`` list), as RS-LTXV's ComfyUI MODEL does.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass

import torch
from torch import nn

from ..ltx.errors import InputError
from ..ltx.loading import load_transformer
from ..ltx.transformer import LTXAVTransformer

#: ``LoadRecipe.dtype`` names → torch dtypes
RECIPE_DTYPES: dict[str, torch.dtype] = {"bfloat16": torch.bfloat16, "float16": torch.float16,
                                         "float32": torch.float32}


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` → ``"bfloat16"`` (a :class:`LoadRecipe`'s ``dtype``, a key of :data:`RECIPE_DTYPES` for the
    dtypes workers can load)."""
    return str(dtype).removeprefix("torch.")


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

    def delta(self) -> torch.Tensor:
        """``(strength · scale) · (up @ down)`` in float32, shape ``(out, in)`` (ComfyUI's order of operations)."""
        return (self.strength * self.scale) * torch.mm(self.up.float().flatten(1), self.down.float().flatten(1))


@dataclass(frozen=True)
class LoadRecipe:
    """What a worker needs to load the transformer by itself: ``checkpoint`` (path of a ``.safetensors`` or
    ``.gguf`` file that exists at the same path on every node), ``dtype`` (a :data:`RECIPE_DTYPES` name),
    ``distilled`` (as the model was loaded) and the ``loras`` of the MODEL, in the order ComfyUI applies them."""

    checkpoint: str
    dtype: str = "bfloat16"
    distilled: bool = False
    loras: tuple[LoraPatch, ...] = ()


def recipe_key(recipe: LoadRecipe) -> str:
    """A digest naming what ``recipe`` loads (path, file size and time when the file is visible here, dtype, every
    LoRA's key, numbers and factor bytes): workers keep a model loaded while the key stays the same."""
    h = hashlib.sha1()
    try:
        stat = os.stat(recipe.checkpoint)
        stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        stamp = "?"
    h.update(f"{os.path.abspath(recipe.checkpoint)}|{stamp}|{recipe.dtype}|{recipe.distilled}".encode())
    for p in recipe.loras:
        h.update(f"|{p.key}|{p.alpha}|{p.strength}".encode())
        for t in (p.up, p.down):
            t = t.detach().to("cpu").contiguous()
            h.update(f"{tuple(t.shape)}{t.dtype}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class RecipeLoraDelta:
    """A per-forward patch of a GGUF-quantised layer (its ``patches`` list): ``f(base) -> delta`` on the
    dequantised float32 weight ``base`` ``(out, in)``, computed as ComfyUI's ``comfy.lora.calculate_weight(patches,
    base) - base`` (what ``nodes/comfy_model.py`` attaches under ComfyUI)."""

    def __init__(self, patches: list[LoraPatch]) -> None:
        self.patches = patches

    def __call__(self, base: torch.Tensor) -> torch.Tensor:
        """The delta for ``base`` ``(out, in)`` float32, same shape."""
        weight = base.clone()
        for p in self.patches:
            weight += p.delta().to(weight.device).reshape(weight.shape)
        return weight - base


def _is_quantised(module: nn.Module) -> bool:
    """A GGUF layer (``gguf_loader.linear.GGUFLinear``, recognised by its packed ``qweight`` and ``patches``)."""
    return hasattr(module, "qweight") and isinstance(getattr(module, "patches", None), list)


def apply_loras(model: nn.Module, loras: tuple[LoraPatch, ...] | list[LoraPatch]) -> None:
    """Add every patch to its weight in place (see the module docstring); patches of one key are summed in order.

    Raises:
        InputError: a patch names no weight of ``model``, or its ``up @ down`` does not have the weight's shape.
    """
    by_key: dict[str, list[LoraPatch]] = defaultdict(list)
    for p in loras:
        by_key[p.key].append(p)
    for key, patches in by_key.items():
        owner, _, attr = key.rpartition(".")
        try:
            module = model.get_submodule(owner)
        except AttributeError:
            module = None
        if module is not None and _is_quantised(module) and attr == "weight":
            shape = tuple(module.weight_shape)
            target = None
        else:
            target = getattr(module, attr, None) if module is not None else None
            if not isinstance(target, torch.Tensor):
                raise InputError(f"LoRA patch for {key!r}: the transformer has no such weight; the LoRA was made "
                                 "for another model.")
            shape = tuple(target.shape)
        for p in patches:
            fits = p.up.ndim >= 2 and p.down.ndim >= 2 and p.up.flatten(1).shape[1] == p.down.shape[0]
            if not fits or p.up.shape[0] * p.down.flatten(1).shape[1] != torch.Size(shape).numel():
                raise InputError(f"LoRA patch for {key!r}: up {tuple(p.up.shape)} @ down {tuple(p.down.shape)} does "
                                 f"not fit the weight {shape}; the LoRA was made for another model.")
        if target is None:
            module.patches.append(RecipeLoraDelta(patches))
            continue
        weight = target.detach().float().clone()
        for p in patches:
            weight += p.delta().to(weight.device).reshape(weight.shape)
        target.data = weight.to(target.dtype)


def load_from_recipe(recipe: LoadRecipe, device: torch.device | str = "cpu") -> LTXAVTransformer:
    """The transformer of ``recipe``: read memory-mapped from its checkpoint (:func:`~rs_ltxv.ltx.loading.
    load_transformer`) in its dtype on ``device``, LoRA patches applied (:func:`apply_loras`). Mirrors what
    ComfyUI's ``ModelPatcher.patch_model`` does to a loaded model with LoRA patches.

    Raises:
        InputError: ``recipe.dtype`` is not a :data:`RECIPE_DTYPES` name; a LoRA patch does not fit.
        CheckpointError: the checkpoint is missing or unusable on this node (see ``load_transformer``).
    """
    if recipe.dtype not in RECIPE_DTYPES:
        raise InputError(f"LoadRecipe.dtype must be one of {', '.join(RECIPE_DTYPES)}; got {recipe.dtype!r}.")
    model = load_transformer(recipe.checkpoint, dtype=RECIPE_DTYPES[recipe.dtype], device=device)
    apply_loras(model, recipe.loras)
    return model
