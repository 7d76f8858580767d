"""LoRA file keys → the transformer weights they patch.

A LoRA file stores, per patched layer, a ``down`` ``(r, in)`` and an ``up`` ``(out, r)`` factor and optionally an
``alpha`` scalar, under ``<layer name><suffix>``. Layer names found in LTX-2 / LTX-2.3 LoRAs (one file uses one):

* official / ComfyUI: ``diffusion_model.<official module>`` (Lightricks' trainer; ComfyUI's
  ``model_lora_keys_unet`` maps ``diffusion_model.<name>``), also bare ``<official module>``;
* diffusers / PEFT: ``transformer.<diffusers module>`` (diffusers' ``LTX2LoraLoaderMixin`` renames the official names,
  e.g. ``patchify_proj`` → ``proj_in``, ``adaln_single`` → ``time_embed``; :func:`diffusers_name`), or
  ``transformer.<official module>``;
* kohya / OneTrainer: ``lora_unet_<module with "_" for ".">`` or ``lora_transformer_…`` (official or diffusers
  module names; resolved against the model's real module names, as ComfyUI's ``lora_unet_`` key map does).

Suffixes (:data:`PAIR_SUFFIXES`, ComfyUI's ``LoRAAdapter.load`` list): ``.lora_A.weight`` / ``.lora_B.weight`` (PEFT),
``.lora_down.weight`` / ``.lora_up.weight`` (kohya), and a few rarer spellings; ``<layer>.alpha`` is optional for all.
Other adapter kinds (LoHa, LoKr, DoRA, LoCon mid weights, OFT, GLoRA, full weight differences) are refused by name
(:data:`UNSUPPORTED`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InputError
from ..quant.linear import is_quantised

#: (down suffix, up suffix) of one LoRA pair, as ComfyUI's ``comfy.weight_adapter.lora.LoRAAdapter.load`` reads them
PAIR_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".lora_A.weight", ".lora_B.weight"),  # PEFT / diffusers / official LTX trainer
    (".lora_down.weight", ".lora_up.weight"),  # kohya
    (".lora_A.default.weight", ".lora_B.default.weight"),  # PEFT with the adapter name left in
    (".lora_A", ".lora_B"),  # Mochi-style
    (".lora.down.weight", ".lora.up.weight"),
    ("_lora.down.weight", "_lora.up.weight"),
    (".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight"),
)
ALPHA_SUFFIX = ".alpha"

#: key endings of adapter kinds that are not a plain LoRA → their name (for the error message)
UNSUPPORTED: tuple[tuple[str, str], ...] = (
    *((s, "LoHa") for s in (".hada_w1_a", ".hada_w1_b", ".hada_w2_a", ".hada_w2_b", ".hada_t1", ".hada_t2")),
    *((s, "LoKr") for s in (".lokr_w1", ".lokr_w2", ".lokr_w1_a", ".lokr_w1_b", ".lokr_w2_a", ".lokr_w2_b",
                            ".lokr_t2")),
    (".dora_scale", "DoRA"),
    (".lora_mid.weight", "LoCon / Tucker (lora_mid)"),
    *((s, "OFT / BOFT") for s in (".oft_blocks", ".oft_diag", ".oft_R")),
    *((s, "GLoRA") for s in (".a1.weight", ".a2.weight", ".b1.weight", ".b2.weight")),
    *((s, "full weight difference (diff / set_weight / norm)") for s in (".diff", ".diff_b", ".set_weight",
                                                                        ".w_norm", ".b_norm")),
    (".reshape_weight", "reshaped LoRA (reshape_weight)"),
)

#: what a LoRA's keys should look like, for messages
EXPECTED = ("diffusion_model.<layer>.lora_A.weight / .lora_B.weight (official, ComfyUI), "
            "transformer.<layer>.lora_A.weight / .lora_B.weight (diffusers), or "
            "lora_unet_<layer_with_underscores>.lora_down.weight / .lora_up.weight (kohya), each with an optional "
            "<layer>.alpha; <layer> a module of the LTX-2 transformer, e.g. transformer_blocks.0.attn1.to_q")

#: official top-level module → diffusers' name (``diffusers.loaders.lora_conversion_utils`` LTX-2 renames)
DIFFUSERS_TOP: dict[str, str] = {
    "patchify_proj": "proj_in", "audio_patchify_proj": "audio_proj_in",
    "adaln_single": "time_embed", "audio_adaln_single": "audio_time_embed",
    "av_ca_video_scale_shift_adaln_single": "av_cross_attn_video_scale_shift",
    "av_ca_audio_scale_shift_adaln_single": "av_cross_attn_audio_scale_shift",
    "av_ca_a2v_gate_adaln_single": "av_cross_attn_video_a2v_gate",
    "av_ca_v2a_gate_adaln_single": "av_cross_attn_audio_v2a_gate",
    "prompt_adaln_single": "prompt_adaln", "audio_prompt_adaln_single": "audio_prompt_adaln",
}
#: official name component anywhere in a path → diffusers' name
DIFFUSERS_PART: dict[str, str] = {
    "q_norm": "norm_q", "k_norm": "norm_k",
    "scale_shift_table_a2v_ca_video": "video_a2v_cross_attn_scale_shift_table",
    "scale_shift_table_a2v_ca_audio": "audio_a2v_cross_attn_scale_shift_table",
}


def diffusers_name(name: str) -> str:
    """The diffusers ``LTX2VideoTransformer3DModel`` name of an official module / parameter path
    (``patchify_proj`` → ``proj_in``, ``transformer_blocks.0.attn1.q_norm`` → ``transformer_blocks.0.attn1.norm_q``);
    names diffusers keeps are returned unchanged."""
    parts = name.split(".")
    parts[0] = DIFFUSERS_TOP.get(parts[0], parts[0])
    return ".".join(DIFFUSERS_PART.get(p, p) for p in parts)


@dataclass(frozen=True)
class LoraKeys:
    """One LoRA pair in a file: the file's ``down`` / ``up`` (/ ``alpha``) keys of one layer named ``layer`` (the
    file's spelling, suffix removed)."""

    layer: str
    down: str
    up: str
    alpha: str | None = None


def unsupported_kinds(keys: Iterable[str]) -> dict[str, str]:
    """``{kind: first key of that kind}`` for keys of adapter kinds other than plain LoRA (:data:`UNSUPPORTED`)."""
    found: dict[str, str] = {}
    for key in keys:
        for suffix, kind in UNSUPPORTED:
            if key.endswith(suffix):
                found.setdefault(kind, key)
    return found


def parse_lora_keys(keys: Iterable[str], what: str = "LoRA") -> tuple[list[LoraKeys], list[str]]:
    """Group a LoRA file's keys into pairs: ``(pairs, other keys)`` (keys that belong to no pair, e.g. text-encoder
    LoRA weights). Reads names only.

    Raises:
        InputError: the file holds another adapter kind (LoHa, LoKr, DoRA, …; named with a key), an ``up`` without
            its ``down`` (or the reverse), or no LoRA pair at all (a few keys and :data:`EXPECTED` are listed).
    """
    keys = list(keys)
    bad = unsupported_kinds(keys)
    if bad:
        kinds = "; ".join(f"{kind} (e.g. {key})" for kind, key in bad.items())
        raise InputError(f"{what} is not a plain LoRA: it holds {kinds}. RS-LTXV applies plain LoRAs only "
                         "(down/up pairs with an optional alpha); convert it, or load it under ComfyUI with core's "
                         "Load LoRA node on a single GPU.")
    present, used = set(keys), set()
    pairs = []
    for key in keys:
        for down_suffix, up_suffix in PAIR_SUFFIXES:
            if not key.endswith(down_suffix):
                continue
            layer = key[:-len(down_suffix)]
            up = layer + up_suffix
            if up not in present:
                raise InputError(f"{what}: {key} has no {up_suffix.lstrip('.')} partner ({up}); the file is "
                                 "incomplete or not a LoRA.")
            alpha = layer + ALPHA_SUFFIX if layer + ALPHA_SUFFIX in present else None
            pairs.append(LoraKeys(layer, key, up, alpha))
            used.update(k for k in (key, up, alpha) if k is not None)
            break
    for key in keys:
        if key not in used and any(key.endswith(up) for _, up in PAIR_SUFFIXES):
            layer = next(key[:-len(up)] for _, up in PAIR_SUFFIXES if key.endswith(up))
            raise InputError(f"{what}: {key} has no down factor for layer {layer}; the file is incomplete or not a "
                             "LoRA.")
    if not pairs:
        raise InputError(f"{what} holds no LoRA weights I can read (keys like {_few(keys)}); expected {EXPECTED}.")
    return pairs, [k for k in keys if k not in used]


def _few(keys: list[str], n: int = 5) -> str:
    shown = ", ".join(keys[:n]) or "none"
    return shown + (f" … ({len(keys)} in all)" if len(keys) > n else "")


def weight_shape(module: nn.Module) -> tuple[int, ...] | None:
    """The shape of ``module.weight`` when a LoRA can patch it (a 2-D or larger float weight, or a quantised
    layer's logical ``(out, in)``: ``GGUFLinear``, ``QuantLinear``), else None."""
    if is_quantised(module):
        return tuple(module.weight_shape)
    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.ndim >= 2 and weight.is_floating_point():
        return tuple(weight.shape)
    return None


def layer_names(model: nn.Module) -> dict[str, str]:
    """Every spelling of a layer a LoRA file may use → the model's module path, for the modules with a weight a LoRA
    can patch (:func:`weight_shape`). Official spellings win over diffusers ones when two would collide. Works on a
    meta-device model (names only)."""
    table: dict[str, str] = {}
    modules = [name for name, m in model.named_modules() if name and weight_shape(m) is not None]
    for name in modules:  # official spellings first
        for spelling in (f"diffusion_model.{name}", name, f"transformer.{name}",
                         "lora_unet_" + name.replace(".", "_"), "lora_transformer_" + name.replace(".", "_")):
            table.setdefault(spelling, name)
    for name in modules:
        d = diffusers_name(name)
        for spelling in (f"transformer.{d}", "lora_unet_" + d.replace(".", "_"),
                         "lora_transformer_" + d.replace(".", "_")):
            table.setdefault(spelling, name)
    return table


def match_layers(pairs: list[LoraKeys], model: nn.Module) -> tuple[dict[str, LoraKeys], list[LoraKeys]]:
    """``({module path: pair}, pairs that name no module of model)`` (names only; see :func:`parse_lora_keys` for
    the file's own problems).

    Raises:
        InputError: two pairs of the file patch the same module (e.g. both spellings of one layer).
    """
    table = layer_names(model)
    matched: dict[str, LoraKeys] = {}
    unmatched = []
    for pair in pairs:
        name = table.get(pair.layer)
        if name is None:
            unmatched.append(pair)
        elif name in matched:
            raise InputError(f"LoRA layers {matched[name].layer} and {pair.layer} both patch {name}; the file "
                             "mixes two layouts.")
        else:
            matched[name] = pair
    return matched, unmatched
