"""What Ray workers need to rebuild a MODEL themselves: a ``rs_ltxv.distributed.LoadRecipe`` — the checkpoint path,
the weight dtype, distilled or not, and the plain-LoRA weight patches ComfyUI's LoRA loaders put on the patcher.

ComfyUI keeps a MODEL's LoRA as ``patcher.patches[key] = [(strength_patch, adapter, strength_model, offset,
function), …]`` (``comfy.model_patcher.ModelPatcher.add_patches``), where a plain LoRA's adapter is a
``comfy.weight_adapter.lora.LoRAAdapter`` (``name == "lora"``) with ``weights = (up (out, r), down (r, in), alpha,
mid, dora_scale, reshape)``; ``comfy.lora.calculate_weight`` then adds ``strength · alpha / r · up @ down`` in
float32. Those become :class:`~rs_ltxv.distributed.LoraPatch` es; anything else (LoHa, LoKr, DoRA, LoCon mid
weights, offset / function patches, full weight diffs, hook LoRAs) is refused with a message naming it. No ComfyUI
import: the patcher and adapters are read through their attributes.
"""

from __future__ import annotations

import os
from typing import Any

from ..ltx.errors import InputError
from .comfy_model import LTXVModule, describe

PREFIX = "diffusion_model."  # LTXVModule's state-dict prefix: patch keys are "diffusion_model.<transformer name>"
USE_OUR_LOADER = "Load the model with RS LTXV Model Loader (each GPU worker loads the file itself)."


def _drop_it(what: str, key: str, kind: str) -> InputError:
    return InputError(f"{what}: the weight patch on {key} is {kind}; multi-GPU runs take plain LoRA only (core's "
                      "Load LoRA / LoraLoaderModelOnly with a LoRA file). Remove that patch's loader, or run on one "
                      "GPU (gpus = 1 or no RS LTXV Multi-GPU (Ray) node).")


def _adapter_kind(adapter: Any) -> str | None:
    """None for a plain LoRA adapter; else what it is, for the message."""
    name = getattr(adapter, "name", None)
    if isinstance(adapter, (list, tuple)):
        if isinstance(adapter, list):
            return "a nested patch list"
        return f"a '{adapter[0]}' weight patch" if len(adapter) == 2 and isinstance(adapter[0], str) else \
            "a full weight difference ('diff')"
    if name != "lora" or not isinstance(getattr(adapter, "weights", None), tuple) or len(adapter.weights) != 6:
        return f"a {name or type(adapter).__name__} adapter" + (" (LoHa)" if name == "loha" else
                                                                 " (LoKr)" if name == "lokr" else "")
    _, _, _, mid, dora_scale, reshape = adapter.weights
    if dora_scale is not None:
        return "a DoRA LoRA (dora_scale)"
    if mid is not None:
        return "a LoCon / Tucker LoRA (mid weight)"
    if reshape is not None:
        return "a LoRA that reshapes the weight"
    return None


def lora_patches(patcher: Any, what: str = "RS LTXV") -> tuple:
    """``patcher.patches`` → a tuple of ``rs_ltxv.distributed.LoraPatch`` (key: the transformer parameter name,
    ``up (out, r)`` / ``down (r, in)`` on the CPU in their stored dtype, ``alpha`` (None: scale 1), ``strength``), in
    ComfyUI's order (keys as stored, each key's patches in the order they were added).

    Raises:
        InputError: a patch is not a plain LoRA (see the module docstring), is scaled by ``strength_model``, or
            the MODEL carries hook LoRAs; the message names the patch and what to do.
    """
    from ..distributed import LoraPatch

    if getattr(patcher, "hook_patches", None):
        raise InputError(f"{what}: the model carries hook LoRAs (Create Hook LoRA); multi-GPU runs take LoRAs "
                         "applied with core's Load LoRA / LoraLoaderModelOnly only.")
    out = []
    for key, entries in (getattr(patcher, "patches", None) or {}).items():
        if not key.startswith(PREFIX):
            raise _drop_it(what, key, "outside the transformer")
        for strength, adapter, strength_model, offset, function in entries:
            kind = _adapter_kind(adapter)
            if kind is None and float(strength_model) != 1.0:
                kind = f"scaled by strength_model {strength_model}"
            if kind is None and (offset is not None or function is not None):
                kind = "an offset / function patch"
            if kind is not None:
                raise _drop_it(what, key, kind)
            up, down, alpha = adapter.weights[:3]
            out.append(LoraPatch(key=key[len(PREFIX):], up=up.detach().to("cpu").contiguous(),
                                 down=down.detach().to("cpu").contiguous(),
                                 alpha=None if alpha is None else float(alpha), strength=float(strength)))
    return tuple(out)


def load_recipe(model: Any, what: str = "RS LTXV") -> Any:
    """The ``rs_ltxv.distributed.LoadRecipe`` of a MODEL from RS LTXV Model Loader (optionally through core LoRA
    loaders): ``LTXVModule.source``, the weights' dtype (``get_dtype()``), ``distilled`` and :func:`lora_patches`.

    Raises:
        InputError: the MODEL is not ours (core's loaders keep no file path to hand to the workers), was built in
            memory (no file), or carries a patch that is not a plain LoRA.
    """
    from ..distributed import LoadRecipe
    from ..distributed.recipe import dtype_name

    module = getattr(model, "model", model)
    if not isinstance(module, LTXVModule):
        raise InputError(f"{what}: model is a {describe(model)}; multi-GPU needs the file the model came from. "
                         f"{USE_OUR_LOADER}")
    if module.source is None:
        raise InputError(f"{what}: this model was built in memory, not loaded from a file. {USE_OUR_LOADER}")
    loras = lora_patches(model, what) if model is not module else ()
    return LoadRecipe(checkpoint=os.path.abspath(module.source), dtype=dtype_name(module.get_dtype()),
                      distilled=bool(module.distilled), loras=loras)
