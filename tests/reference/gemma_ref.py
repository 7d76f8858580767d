"""Reference pieces for the Gemma-3 tests: tiny ``transformers`` Gemma-3 models, a tiny SentencePiece tokenizer
trained on the spot, and writers for the checkpoint layouts we load (Hugging Face folders, ComfyUI single files with
float8 weights). Nothing here re-implements Gemma: the reference is ``transformers.Gemma3TextModel``."""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers import Gemma3TextConfig, Gemma3TextModel

CORPUS = [
    "A cat walks slowly across a sunny kitchen floor while the camera pans left.",
    "The ocean waves crash on the rocks at sunset, seagulls cry in the distance.",
    "Close-up of a woman laughing, warm light, 35mm film grain, shallow depth of field.",
    "A red sports car drives through a neon-lit city at night in the rain.",
    "Two children play football in a park; birds sing and leaves rustle in the wind.",
    "Slow motion: water drops fall into a glass, 1234 5678 numbers, ÄÖÜ é ß.",
]


def tiny_hf_config(**overrides: Any) -> Gemma3TextConfig:
    """A tiny Gemma-3: 7 layers (5 sliding, 1 global, 1 sliding), window 4, GQA 4:2, head_dim 16 with
    ``query_pre_attn_scalar`` 12 (≠ head_dim), global RoPE with linear factor 8."""
    kw: dict[str, Any] = dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=7,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=12,
                              sliding_window=4, rope_scaling={"rope_type": "linear", "factor": 8.0},
                              rope_theta=10_000.0, rope_local_base_freq=100.0)
    kw.update(overrides)
    return Gemma3TextConfig(**kw)


def realistic_gemma_init(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Linear ~ N(0, 1/fan_in), embeddings ~ N(0, 1/hidden) (·√hidden → unit scale), RMSNorm weights (used as
    1 + w) ~ N(0, 0.1²), so every layer, both RoPE kinds and the masks change the outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:  # Linear (out, in) and embeddings (vocab, hidden): N(0, 1/shape[1])
                p.copy_(torch.randn(p.shape, generator=gen) * p.shape[1] ** -0.5)
    return model.eval()


def tiny_hf_gemma(seed: int = 0, attn: str = "sdpa", **overrides: Any) -> Gemma3TextModel:
    """``transformers``' Gemma3TextModel for :func:`tiny_hf_config` (``overrides`` change it), realistically
    initialised (:func:`realistic_gemma_init`). Every tiny Gemma of the tests comes from here."""
    cfg = tiny_hf_config(**overrides)
    cfg._attn_implementation = attn
    return realistic_gemma_init(Gemma3TextModel(cfg), seed)


def tiny_hf_gemma_of_width(hidden: int, layers: int = 2, seed: int = 31) -> Gemma3TextModel:
    """A Gemma whose width is a tiny LTX model's ``caption_channels`` and whose vocabulary is the tiny tokenizer's
    (400); sliding (window 5) and global layers alternate."""
    types = (["sliding_attention", "full_attention"] * layers)[:layers]
    return tiny_hf_gemma(seed=seed, vocab_size=400, hidden_size=hidden, intermediate_size=40,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1, head_dim=12,
                         query_pre_attn_scalar=10, sliding_window=5, layer_types=types)


def tiny_hf_gemma_for_gguf(seed: int = 41, **overrides: Any) -> Gemma3TextModel:
    """A Gemma that GGUF metadata can describe: query_pre_attn_scalar = head_dim, local RoPE base 10 000, every
    6th layer global; the tiny tokenizer's vocabulary; rows of 32-multiples so Q8_0 applies to every weight
    matrix."""
    kw: dict[str, Any] = dict(vocab_size=len(tiny_sentencepiece_vocabulary()[0]), hidden_size=32,
                              intermediate_size=64, query_pre_attn_scalar=16, rope_local_base_freq=10_000.0)
    kw.update(overrides)
    return tiny_hf_gemma(seed=seed, **kw)


def hf_gemma_from_state(config: dict[str, Any], state: dict[str, torch.Tensor],
                        attn: str | None = None) -> Gemma3TextModel:
    """``transformers``' Gemma3TextModel for a Hugging Face config dict (``model_type`` ignored) holding ``state``
    (names with or without the ``model.`` prefix, loaded strictly), in eval mode; ``attn`` picks the attention
    implementation (default: transformers' choice)."""
    cfg = Gemma3TextConfig(**{k: v for k, v in config.items() if k != "model_type"})
    if attn is not None:
        cfg._attn_implementation = attn
    model = Gemma3TextModel(cfg).eval()
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()}, strict=True)
    return model


def run_hf(model: Gemma3TextModel, ids: torch.Tensor, mask: torch.Tensor | None) -> list[torch.Tensor]:
    """All hidden states of ``transformers``' model (embeddings + every layer; the last after the final norm)."""
    with torch.no_grad():
        return list(model(ids, attention_mask=mask, output_hidden_states=True).hidden_states)


@functools.cache
def train_tiny_sentencepiece(vocab_size: int = 400) -> bytes:
    """A BPE SentencePiece model in Gemma's style (byte fallback, split digits, identity normaliser, no dummy
    prefix; pad 0, eos 1, bos 2, unk 3), trained on :data:`CORPUS`."""
    import sentencepiece as spm

    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 4), model_writer=out, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, split_digits=True, normalization_rule_name="identity", add_dummy_prefix=False,
        remove_extra_whitespaces=False, pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>",
        eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>", minloglevel=2, hard_vocab_limit=False,
    )
    return out.getvalue()


def tiny_sentencepiece_vocabulary() -> tuple[list[str], list[float], list[int]]:
    """(pieces, scores, types) of :func:`train_tiny_sentencepiece`'s model: the vocabulary as GGUF stores it."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    model = pb.ModelProto()
    model.ParseFromString(train_tiny_sentencepiece())
    return [p.piece for p in model.pieces], [p.score for p in model.pieces], [int(p.type) for p in model.pieces]


def write_tokenizer_folder(model_bytes: bytes, folder: Path) -> Path:
    """``tokenizer.model`` + a Gemma ``tokenizer_config.json`` (what ``AutoTokenizer`` reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(model_bytes)
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GemmaTokenizer", "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
        "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False, "padding_side": "left"}))
    return folder


def hf_reference_tokenize(folder: Path, prompts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """LTX's reference tokenisation (ltx-core ``LTXVGemmaTokenizer``): ``AutoTokenizer``, stripped text,
    ``padding="max_length"``, left padding, truncation."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    tok.padding_side = "left"
    enc = tok([p.strip() for p in prompts], padding="max_length", max_length=max_length, truncation=True,
              return_tensors="pt")
    return enc.input_ids, enc.attention_mask


def fp8_quantise(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-tensor float8_e4m3fn with scale ``max|W| / 448`` (ComfyUI's fp8 layout): returns (w8, scale)."""
    scale = weight.abs().max().float() / 448.0
    return (weight.float() / scale).to(torch.float8_e4m3fn), scale.reshape(())


def write_comfy_file(state: dict[str, torch.Tensor], path: Path, *, spiece: bytes | None,
                     fp8: str | None = None) -> dict[str, torch.Tensor]:
    """ComfyUI single-file text encoder: ``model.*`` names, optional ``spiece_model``, and with ``fp8`` =
    ``"comfy_quant"`` (``weight_scale`` + ``comfy_quant`` JSON) or ``"scaled_fp8"`` (``scale_weight`` + marker)
    the 2-D projection weights in float8. Returns the float32 weights the file stands for (dequantised)."""
    out: dict[str, torch.Tensor] = {}
    effective: dict[str, torch.Tensor] = {}
    for name, w in state.items():
        key = "model." + name
        if fp8 and w.ndim == 2 and "embed_tokens" not in name:
            w8, scale = fp8_quantise(w)
            base = key[: -len(".weight")]
            out[key] = w8
            if fp8 == "comfy_quant":
                out[base + ".weight_scale"] = scale
                out[base + ".comfy_quant"] = torch.tensor(list(b'{"format": "float8_e4m3fn"}'), dtype=torch.uint8)
            else:
                out[base + ".scale_weight"] = scale
            effective[name] = w8.float() * scale
        else:
            out[key] = w.contiguous()
            effective[name] = w.float()
    if fp8 == "scaled_fp8":
        out["scaled_fp8"] = torch.zeros(0, dtype=torch.float8_e4m3fn)
    if spiece is not None:
        out["spiece_model"] = torch.tensor(list(spiece), dtype=torch.uint8)
    save_file(out, str(path))
    return effective


def tiny_tokenizer_ids(text: str) -> list[int]:
    """``[BOS] + pieces`` of the tiny tokenizer through ``sentencepiece`` itself."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=train_tiny_sentencepiece())
    return [2, *sp.encode(text.strip())]
