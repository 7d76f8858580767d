"""Tensor-name mapping for the GGUF layouts in circulation.

**LTX-2 / LTX-2.3** (QuantStack, unsloth, ComfyUI-GGUF's ``convert.py``): the official module names, either bare
(``transformer_blocks.0.attn1.to_q.weight``) or under ``model.diffusion_model.`` (also seen as plain
``diffusion_model.``); connectors as ``{video,audio}_embeddings_connector.*`` inside the diffusion model.
:func:`ltx_key` puts every diffusion-model tensor under ``model.diffusion_model.`` — the prefix of the official
single files — and leaves other components (``text_embedding_projection.``, ``vae.``, …) as they are.

**Gemma-3** (llama.cpp ``convert_hf_to_gguf.py``, architecture ``gemma3``): ``blk.N.*`` names → Hugging Face
``model.*`` names (``Gemma3ForCausalLM`` state dict; strip ``model.`` for ``Gemma3TextModel``).

Norm convention: Hugging Face's ``Gemma3RMSNorm`` computes ``x̂ · (1 + w)`` while llama.cpp's RMS norm computes
``x̂ · w``, so llama.cpp's converter stores ``1 + w`` for every Gemma norm weight (``attn_norm``, ``ffn_norm``,
``post_attention_norm``, ``post_ffw_norm``, ``attn_q_norm``, ``attn_k_norm``, ``output_norm``). :func:`gemma3_state`
subtracts 1 again (``GEMMA_NORM_SHIFT``). Checked on the real ``gemma-3-270m-q4_k_m.gguf``: stored norm weights are
centred near 1 + w (their HF counterparts near 0 or small), and only the shifted weights make the model predict
sensible next tokens (see ``tests/test_gguf_gemma.py``). q/k projections are not permuted for Gemma (llama.cpp uses
NeoX-style rotation for it), so they map as stored.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from .errors import GGUFError
from .reader import GGUFFile

LTX_ARCHITECTURES = ("ltxv",)
DIFFUSION_PREFIX = "model.diffusion_model."
_LTX_ALIASES = ("diffusion_model.",)


def ltx_key(key: str) -> str:
    """The official single-file name of a GGUF tensor key of an LTX-2 file (``diffusion_model.x`` →
    ``model.diffusion_model.x``; other keys unchanged). ComfyUI-GGUF's ``loader.gguf_sd_loader`` strips the same
    prefix (``handle_prefix``) instead."""
    for alias in _LTX_ALIASES:
        if key.startswith(alias):
            return DIFFUSION_PREFIX + key[len(alias):]
    return key


GEMMA3_ARCHITECTURE = "gemma3"
GEMMA_NORM_SHIFT = 1.0
_GEMMA_GLOBAL = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_GEMMA_BLOCK = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "attn_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
_BLOCK_RE = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")


def gemma3_hf_name(key: str) -> str:
    """Hugging Face name of a llama.cpp Gemma-3 tensor name (``blk.0.attn_q.weight`` →
    ``model.layers.0.self_attn.q_proj.weight``): ``gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA3, n)`` read
    backwards.

    Raises:
        GGUFError: a name outside llama.cpp's Gemma-3 layout.
    """
    if key in _GEMMA_GLOBAL:
        return _GEMMA_GLOBAL[key]
    m = _BLOCK_RE.match(key)
    if m and m.group(2) in _GEMMA_BLOCK:
        return f"model.layers.{m.group(1)}.{_GEMMA_BLOCK[m.group(2)]}.{m.group(3)}"
    raise GGUFError(f"'{key}' is not a Gemma-3 tensor name of llama.cpp's layout (token_embd, blk.N.attn_q, …).")


def is_gemma_norm(hf_name: str) -> bool:
    """Whether a Hugging Face Gemma-3 name is a norm weight (stored by llama.cpp as ``1 + w``)."""
    return hf_name.endswith(("norm.weight", "layernorm.weight"))


def gemma3_state(file: GGUFFile, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Every tensor of a Gemma-3 GGUF in its torch-order shape, dequantised to ``dtype`` on ``device`` under its
    Hugging Face name, norm weights converted from llama.cpp's ``1 + w`` back to Hugging Face's ``w``.

    Raises:
        GGUFError: another architecture, an unknown tensor name, or data that is truncated or cannot be
            dequantised.
    """
    file.require_architecture(GEMMA3_ARCHITECTURE, what="a Gemma-3 text encoder", allow_missing=False)
    out = {}
    for key in file.tensors:
        name = gemma3_hf_name(key)
        value = file.tensor(key, torch.float32, device)
        if is_gemma_norm(name):
            value = value - GEMMA_NORM_SHIFT
        out[name] = value.to(dtype)
    return out


def gemma3_config(file: GGUFFile) -> dict[str, Any]:
    """Hugging Face ``Gemma3TextConfig`` fields read from llama.cpp metadata (``gemma3.*``).

    Not stored by llama.cpp and taken from Gemma-3's defaults: ``query_pre_attn_scalar`` = head_dim (true for
    270M/1B/4B/12B), the local (sliding-window) RoPE base 10 000 and the 5 local : 1 global layer pattern.
    The keys are those llama.cpp's ``convert_hf_to_gguf.py`` writes (``gguf.Keys.LLM`` / ``gguf.Keys.Attention``).

    Raises:
        GGUFError: another architecture, or a needed ``gemma3.*`` field is missing or not a number.
    """
    file.require_architecture(GEMMA3_ARCHITECTURE, what="a Gemma-3 text encoder", allow_missing=False)
    md = file.metadata

    def get(key: str, default: Any = None) -> int | float:
        value = md.get(f"gemma3.{key}", default)
        if value is None:
            raise GGUFError(f"{file.path.name}: metadata 'gemma3.{key}' is missing; the file is not a complete "
                            "llama.cpp Gemma-3 conversion.")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise GGUFError(f"{file.path.name}: metadata 'gemma3.{key}' is {str(value)[:40]!r}, not a number. The "
                            "file is corrupt; convert it again.")
        return value

    head_dim = int(get("attention.key_length"))
    vocab = file.tensors["token_embd.weight"].shape[0] if "token_embd.weight" in file.tensors else None
    cfg: dict[str, Any] = {
        "vocab_size": vocab or len(tokens if isinstance(tokens := md.get("tokenizer.ggml.tokens"), list) else []),
        "hidden_size": int(get("embedding_length")),
        "intermediate_size": int(get("feed_forward_length")),
        "num_hidden_layers": int(get("block_count")),
        "num_attention_heads": int(get("attention.head_count")),
        "num_key_value_heads": int(get("attention.head_count_kv")),
        "head_dim": head_dim,
        "rms_norm_eps": float(get("attention.layer_norm_rms_epsilon")),
        "rope_theta": float(get("rope.freq_base")),
        "rope_local_base_freq": 10_000.0,
        "sliding_window": int(get("attention.sliding_window")),
        "max_position_embeddings": int(get("context_length")),
        "query_pre_attn_scalar": head_dim,
        "rope_scaling_factor": get("rope.scaling.factor") if "gemma3.rope.scaling.factor" in md else None,
    }
    for key in ("bos_token_id", "eos_token_id", "padding_token_id"):
        value = md.get(f"tokenizer.ggml.{key}")
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise GGUFError(f"{file.path.name}: metadata 'tokenizer.ggml.{key}' is {str(value)[:40]!r}, not an "
                                "integer. The file is corrupt; convert it again.")
            cfg[key.replace("padding", "pad")] = value
    return cfg
