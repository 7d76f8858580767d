"""How a worker builds its own copy of the transformer: a :class:`LoadRecipe` (checkpoint path, dtype, LoRA patches)
sent once; the weights themselves never travel, each worker memory-maps the file.

LoRA patches (:class:`~rs_ltxv.ltx.lora.LoraPatch`, re-exported here) are applied by the library's
:func:`~rs_ltxv.ltx.lora.apply_lora_patches`, ComfyUI's plain-LoRA math: in float32,
``W + (strength · alpha / r) · (up @ down)``, then cast to the weight's dtype; GGUF-quantised layers keep their packed
weights and get the delta on every forward (their ``patches`` list), as RS-LTXV's ComfyUI MODEL does.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch

from ..ltx.errors import InputError
from ..ltx.loading import load_transformer
from ..ltx.lora import LoraPatch, apply_lora_patches
from ..ltx.transformer import LTXAVTransformer

__all__ = ["RECIPE_DTYPES", "LoadRecipe", "LoraPatch", "dtype_name", "load_from_recipe", "recipe_key"]

#: ``LoadRecipe.dtype`` names → torch dtypes
RECIPE_DTYPES: dict[str, torch.dtype] = {"bfloat16": torch.bfloat16, "float16": torch.float16,
                                         "float32": torch.float32}


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` → ``"bfloat16"`` (a :class:`LoadRecipe`'s ``dtype``, a key of :data:`RECIPE_DTYPES` for the
    dtypes workers can load)."""
    return str(dtype).removeprefix("torch.")


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


def load_from_recipe(recipe: LoadRecipe, device: torch.device | str = "cpu") -> LTXAVTransformer:
    """The transformer of ``recipe``: read memory-mapped from its checkpoint (:func:`~rs_ltxv.ltx.loading.
    load_transformer`) in its dtype on ``device``, LoRA patches applied (:func:`~rs_ltxv.ltx.lora.
    apply_lora_patches`). Mirrors what ComfyUI's ``ModelPatcher.patch_model`` does to a loaded model with LoRA
    patches.

    Raises:
        InputError: ``recipe.dtype`` is not a :data:`RECIPE_DTYPES` name; a LoRA patch does not fit.
        CheckpointError: the checkpoint is missing or unusable on this node (see ``load_transformer``).
    """
    if recipe.dtype not in RECIPE_DTYPES:
        raise InputError(f"LoadRecipe.dtype must be one of {', '.join(RECIPE_DTYPES)}; got {recipe.dtype!r}.")
    model = load_transformer(recipe.checkpoint, dtype=RECIPE_DTYPES[recipe.dtype], device=device)
    apply_lora_patches(model, recipe.loras)
    return model
