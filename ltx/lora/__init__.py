"""LoRA without ComfyUI: read LoRA files in the layouts found for LTX-2 / LTX-2.3 (official / ComfyUI, diffusers,
kohya; :mod:`.keys`), apply them to a transformer with ComfyUI's math — merged into float weights, a per-forward
delta on GGUF-quantised layers — and remove them again bit for bit (:mod:`.apply`, :mod:`.patch`).

Use: ``handle = apply_loras(transformer, [LoraSpec("style.safetensors", 0.8)])`` … ``handle.remove()``, or
``load_model_parts(checkpoint, loras=[LoraSpec(...)])``. Multi-GPU workers get the same :class:`LoraPatch` es through
``rs_ltxv.distributed.LoadRecipe(loras=...)``.
"""

from __future__ import annotations

from .apply import (
    AppliedLoras,
    LoraInput,
    LoraSpec,
    apply_lora_patches,
    apply_loras,
    as_lora_spec,
    check_lora_file,
    check_lora_patches,
    read_lora,
    read_loras,
)
from .keys import EXPECTED, diffusers_name, parse_lora_keys
from .patch import LoraPatch, QuantisedLoraDelta, add_deltas

__all__ = ["EXPECTED", "AppliedLoras", "LoraInput", "LoraPatch", "LoraSpec", "QuantisedLoraDelta", "add_deltas",
           "apply_lora_patches", "apply_loras", "as_lora_spec", "check_lora_file", "check_lora_patches",
           "diffusers_name", "parse_lora_keys", "read_lora", "read_loras"]
