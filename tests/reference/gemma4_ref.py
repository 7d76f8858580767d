"""Reference pieces for the Gemma-4 tests: tiny ``transformers`` ``Gemma4UnifiedModel`` s (the parity target),
writers for the bundled LTX-2.5 text-encoder layout and a Hugging Face folder, and the ltx-core 1.2.0 prompt rules
(tokenisation with the BOS prepended when missing, left padding) on ``transformers``' own tokenizer. Nothing here
re-implements Gemma-4: the reference model is ``transformers.models.gemma4_unified``."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import Gemma4UnifiedConfig, PreTrainedTokenizerFast
from transformers.models.gemma4_unified.modeling_gemma4_unified import Gemma4UnifiedModel

SLIDING, FULL = "sliding_attention", "full_attention"
LTX_MIRROR = Path("/work/.mirror/Lightricks+LTX-2/repo")
LTX_CORE_TAG = "v1.2.0"


def tiny_text_config(**overrides: Any) -> dict[str, Any]:
    """A tiny ``gemma4_unified`` text config: 6 layers (sliding, sliding, global, sliding, sliding, global), window
    4, sliding heads 4 × 16 with 2 key/value heads, global heads 4 × 32 with one key/value head and K = V,
    proportional global RoPE (a quarter of the pairs rotate), sliding RoPE base 100."""
    kw: dict[str, Any] = dict(
        vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=6, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, global_head_dim=32, num_global_key_value_heads=1, attention_k_eq_v=True,
        sliding_window=4, layer_types=[SLIDING, SLIDING, FULL, SLIDING, SLIDING, FULL],
        rope_parameters={SLIDING: {"rope_type": "default", "rope_theta": 100.0},
                         FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 10_000.0}})
    kw.update(overrides)
    return kw


def realistic_init(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Linear / embeddings ~ N(0, 1/fan_in), RMSNorm weights (multiplied as ``w``) ~ 1 + N(0, 0.1²), each layer's
    ``layer_scalar`` ~ U(0.5, 1.5), so every part of a layer changes the outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * p.shape[-1] ** -0.5)
        for name, b in model.named_buffers():
            if name.endswith("layer_scalar"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))
    return model.eval()


def hf_config(text: dict[str, Any], attn: str = "sdpa", **top: Any) -> Gemma4UnifiedConfig:
    """``Gemma4UnifiedConfig`` with ``text`` as its text config, no vision / audio embedders; ``top``: placeholder
    ids, ``gemma_version`` …"""
    cfg = Gemma4UnifiedConfig(text_config=text, vision_config=None, audio_config=None, **top)
    cfg._attn_implementation = attn
    cfg.text_config._attn_implementation = attn
    return cfg


def tiny_hf_gemma4(seed: int = 0, attn: str = "sdpa", top: dict[str, Any] | None = None,
                   **overrides: Any) -> Gemma4UnifiedModel:
    """``transformers``' ``Gemma4UnifiedModel`` for :func:`tiny_text_config` (``overrides`` change it; ``top`` sets
    top-level config keys), realistically initialised."""
    return realistic_init(Gemma4UnifiedModel(hf_config(tiny_text_config(**overrides), attn, **(top or {}))), seed)


def lm_state(model: Gemma4UnifiedModel, prefix: str = "model.") -> dict[str, torch.Tensor]:
    """The language model's tensors under ``prefix`` + ``Gemma4UnifiedTextModel`` names (ComfyUI-flat ``model.``,
    or ``model.language_model.`` as Hugging Face saves them)."""
    return {f"{prefix}{k.removeprefix('language_model.')}": v.detach().clone().contiguous()
            for k, v in model.state_dict().items() if k.startswith("language_model.")}


def run_hf(model: Gemma4UnifiedModel, ids: torch.Tensor, mask: torch.Tensor | None) -> list[torch.Tensor]:
    """All hidden states of ``transformers``' model (embeddings + every layer, the last after the final norm), as
    ltx-core 1.2.0's ``LTXGemmaTextEncoder.encode`` reads them (``model.model(...)``, text only)."""
    with torch.no_grad():
        return list(model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states)


def write_bundle(path: Path, config: dict[str, Any], tensors: dict[str, torch.Tensor], tokenizer_json: bytes,
                 sidecars: dict[str, Any] | None = None, metadata: dict[str, str] | None = None) -> Path:
    """A bundled text-encoder file as ltx-core 1.2.0's ``build_text_encoder_tensors_from_gemma_root`` writes it:
    ``tensors`` as given, ``tokenizer_json`` and ``hf_asset__*`` uint8 tensors, ``gemma_config`` metadata."""
    out = dict(tensors)
    out["tokenizer_json"] = torch.frombuffer(bytearray(tokenizer_json), dtype=torch.uint8)
    for name, content in (sidecars or {}).items():
        raw = content if isinstance(content, bytes) else json.dumps(content).encode()
        out[f"hf_asset__{name}"] = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    meta = {"format": "pt", "gemma_config": json.dumps(config), **(metadata or {})}
    save_file(out, str(path), metadata=meta)
    return path


def bundle_parts(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], bytes, dict[str, bytes]]:
    """(gemma_config, tensors without the tokenizer and sidecars, tokenizer_json bytes, sidecars) of a bundle."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        config = json.loads(fh.metadata()["gemma_config"])
    tensors = load_file(str(path))
    tok = tensors.pop("tokenizer_json").numpy().tobytes()
    sidecars = {k.removeprefix("hf_asset__"): tensors.pop(k).numpy().tobytes() for k in list(tensors)
                if k.startswith("hf_asset__")}
    return config, tensors, tok, sidecars


def hf_gemma4_from_bundle(path: Path, attn: str = "sdpa") -> Gemma4UnifiedModel:
    """``transformers``' model built from a bundle's ``gemma_config`` holding its ``model.*`` language-model tensors
    (loaded strictly)."""
    config, tensors, _, _ = bundle_parts(path)
    text = dict(config["text_config"])
    top = {k: v for k, v in config.items() if k not in ("text_config", "vision_config", "audio_config", "model_type")}
    model = Gemma4UnifiedModel(hf_config(text, attn, **top)).eval()
    lm = {f"language_model.{k.removeprefix('model.')}": v for k, v in tensors.items()
          if k.startswith(("model.layers.", "model.embed_tokens.", "model.norm."))}
    model.load_state_dict(lm, strict=True)
    return model


def hf_tokenizer(tokenizer_json: bytes, tokenizer_config: bytes | None, max_length: int) -> PreTrainedTokenizerFast:
    """The tokenizer ltx-core 1.2.0 builds (``gemma_assets.build_gemma_hf_tokenizer``): ``transformers``'
    ``PreTrainedTokenizerFast`` over the JSON with the ``tokenizer_config.json`` entries as keyword arguments."""
    from tokenizers import Tokenizer

    skip = {"tokenizer_class", "auto_map", "model_max_length", "backend", "is_local", "local_files_only",
            "processor_class", "added_tokens_decoder"}
    kwargs = {k: v for k, v in json.loads(tokenizer_config or b"{}").items() if k not in skip}
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tokenizer_json.decode()),
                                   model_max_length=max_length, **kwargs)


def ltx_tokenize(tokenizer: PreTrainedTokenizerFast, prompts: list[str],
                 max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ltx-core 1.2.0 ``LTXGemmaTokenizer.tokenize_with_weights`` on each prompt (strip, tokenise with truncation,
    prepend BOS when the first id is not BOS, pad left to ``max_length``) → ids, mask ``(B, max_length)``."""
    tokenizer.padding_side = "left"
    rows_ids, rows_mask = [], []
    for text in prompts:
        ids = tokenizer(text.strip(), padding=False, truncation=True, max_length=max_length).input_ids
        if not ids or ids[0] != tokenizer.bos_token_id:
            ids = [tokenizer.bos_token_id, *ids][:max_length]
        padded = tokenizer.pad({"input_ids": [ids]}, padding="max_length", max_length=max_length,
                               return_tensors="pt", return_attention_mask=True)
        rows_ids.append(padded.input_ids)
        rows_mask.append(padded.attention_mask)
    return torch.cat(rows_ids), torch.cat(rows_mask)


def ltx_core_120_module(relative: str, name: str):
    """A pure module of ltx-core 1.2.0 (``text_encoders/gemma/<relative>``) read from the Lightricks/LTX-2 mirror
    with ``git show`` and imported on its own, or None when the mirror is not on this machine."""
    if not LTX_MIRROR.exists():
        return None
    spec_path = f"{LTX_CORE_TAG}:packages/ltx-core/src/ltx_core/text_encoders/gemma/{relative}"
    try:
        source = subprocess.run(["git", "-C", str(LTX_MIRROR), "show", spec_path], check=True, capture_output=True,
                                text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(source, spec_path, "exec"), module.__dict__)  # the pinned reference source, run as is
    return module
