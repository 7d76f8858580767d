"""A tiny random-weight LTX-2.5 text encoder in the bundled single-file layout (no downloads), for the demo and tests.

:func:`write_tiny_gemma4` writes what ``gemma4-12b-with-proj-ltx-2.5-*.safetensors`` holds, narrow and shallow:
ComfyUI-flat Gemma-4 (``gemma4_unified``) weights with one sliding-window and one global layer (global layers with
wider heads, one key/value head and no ``v_proj``, as the 12B), the ``gemma_config`` metadata (``gemma_version`` =
the one LTX-2.5 checkpoints name), a real ``tokenizer.json`` as the uint8 ``tokenizer_json`` tensor (a small BPE
trained on the spot with the ``tokenizers`` package, Gemma's special tokens first, no BOS added by the tokenizer),
``hf_asset__tokenizer_config.json`` / ``hf_asset__processor_config.json`` sidecars, tiny multimodal embedders (which
the prompt path ignores) and the ``text_embedding_projection.*`` whose widths match the tiny LTX-2.5 transformer
(:func:`~rs_ltxv.ltx.tiny.tiny_config` "2.5": Gemma width ``TINY_GEMMA_DIM``, ``TINY_GEMMA_STATES`` hidden states,
video / audio widths; :data:`TINY_GEMMA_DIM` … here repeat them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .pipeline.output_file import save_safetensors
from .text.features import FeatureExtractorV2
from .text.gemma4 import Gemma4TextModel
from .text.gemma4_config import GEMMA4_LTX_VERSION, Gemma4Config, Gemma4Rope
from .text.gemma_config import FULL, SLIDING

__all__ = ["SPECIAL_TOKENS", "TINY_AUDIO_DIM", "TINY_GEMMA_DIM", "TINY_GEMMA_STATES", "TINY_VIDEO_DIM",
           "tiny_gemma4_config", "tiny_gemma4_tokenizer_json", "write_tiny_gemma4"]

#: Gemma's special pieces in Gemma's order (pad 0, eos 1, bos 2, unk 3) plus the turn and multimodal markers
SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<|turn>", "<turn|>", "<|image>", "<image|>",
                  "<|image|>", "<|audio>", "<audio|>", "<|audio|>", "<|video|>")
_CORPUS = (
    "A red fox runs through a snowy forest at dawn while birds sing.",
    "Waves crash on a rocky shore under a stormy sky; thunder rolls in the distance.",
    "A chef chops vegetables in a busy kitchen, pans sizzle and people talk.",
    "Close-up of a cat yawning in warm afternoon light, soft music plays.",
    "A drone flies over a city at night, cars hum below and neon signs flicker.",
    "Two friends laugh on a park bench as leaves fall around them. 0123456789",
)
_VOCAB = 320
#: the tiny LTX-2.5 transformer's text widths (``ltx/tiny.py``: ``TINY_GEMMA_DIM``, ``TINY_GEMMA_STATES``,
#: ``tiny_config("2.5")`` video / audio inner widths; not imported, as ``ltx/tiny.py`` imports this module; a test
#: checks they agree)
TINY_GEMMA_DIM, TINY_GEMMA_STATES, TINY_VIDEO_DIM, TINY_AUDIO_DIM = 24, 3, 32, 16


def tiny_gemma4_tokenizer_json(vocab_size: int = _VOCAB) -> bytes:
    """A ``tokenizer.json`` in Gemma's style (``▁`` for spaces, BPE, :data:`SPECIAL_TOKENS` as ids 0…, no
    post-processor: no BOS added), trained on a few sentences; the same bytes on every call."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse()])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    tok.train_from_iterator(list(_CORPUS) * 4, trainer)
    return tok.to_str().encode("utf-8")


def tiny_gemma4_config(vocab_size: int, hidden: int = TINY_GEMMA_DIM,
                       layers: int = TINY_GEMMA_STATES - 1) -> Gemma4Config:
    """A tiny ``gemma4_unified`` config: sliding layers (2 heads of 12, 2 key/value heads, window 8) and a last,
    global layer (2 heads of 24, one key/value head shared by K and V, proportional RoPE), ``gemma_version`` as
    LTX-2.5 checkpoints name it; placeholder ids of :data:`SPECIAL_TOKENS`."""
    ids = {name: SPECIAL_TOKENS.index(name) for name in ("<|image|>", "<|video|>", "<|audio|>")}
    types = tuple(FULL if (i + 1) % 2 == 0 or i == layers - 1 else SLIDING for i in range(layers))
    return Gemma4Config(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=2, head_dim=hidden // 2, global_head_dim=hidden,
        num_global_key_value_heads=1, attention_k_eq_v=True, sliding_window=8, layer_types=types,
        rope_sliding=Gemma4Rope("default", 10_000.0), rope_full=Gemma4Rope("proportional", 1_000_000.0, 1.0, 0.25),
        multimodal_token_ids=(ids["<|image|>"], ids["<|video|>"], ids["<|audio|>"]),
        gemma_version=GEMMA4_LTX_VERSION)


def _random_state(module: torch.nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Linear / embedding weights ~ N(0, 1/fan_in), norm weights ~ 1 + N(0, 0.1²), biases ~ N(0, 0.02²), buffers
    (``layer_scalar``) ~ U(0.5, 1.5)."""
    out = {}
    for name, ref in module.state_dict().items():
        if name.endswith("norm.weight"):
            value = 1.0 + 0.1 * torch.randn(ref.shape, generator=gen)
        elif name.endswith("layer_scalar"):
            value = 0.5 + torch.rand(ref.shape, generator=gen)
        elif ref.ndim == 2:
            value = torch.randn(ref.shape, generator=gen) * ref.shape[1] ** -0.5
        else:
            value = 0.02 * torch.randn(ref.shape, generator=gen)
        out[name] = value.contiguous()
    return out


def write_tiny_gemma4(path: str | os.PathLike, seed: int = 0, *, dtype: torch.dtype = torch.float32) -> Path:
    """Write the tiny bundled Gemma-4 text encoder of the module docstring to ``path`` (weights in ``dtype``,
    reproducible from ``seed``) and return its path.

    Raises:
        OSError: the file cannot be written.
    """
    tokenizer = tiny_gemma4_tokenizer_json()
    from tokenizers import Tokenizer

    cfg = tiny_gemma4_config(Tokenizer.from_str(tokenizer.decode()).get_vocab_size())
    gen = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        model = Gemma4TextModel(cfg)
        projection = FeatureExtractorV2(cfg.hidden_size, cfg.num_hidden_states, TINY_VIDEO_DIM, TINY_AUDIO_DIM)
    state = {f"model.{k}": v for k, v in _random_state(model, gen).items()}
    state.update({f"text_embedding_projection.{k}": v for k, v in _random_state(projection, gen).items()})
    mm = 2 * cfg.hidden_size  # the multimodal embedders the prompt path ignores (ComfyUI names)
    state["multi_modal_projector.embedding_projection.weight"] = torch.randn(cfg.hidden_size, mm, generator=gen)
    state["audio_projector.embedding_projection.weight"] = torch.randn(cfg.hidden_size, mm, generator=gen)
    state = {k: v.to(dtype) for k, v in state.items()}
    sidecars = {
        "tokenizer_config.json": {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
                                  "unk_token": "<unk>", "padding_side": "left", "tokenizer_class": "GemmaTokenizer"},
        "processor_config.json": {"processor_class": "Gemma4UnifiedProcessor"},
    }
    state["tokenizer_json"] = torch.frombuffer(bytearray(tokenizer), dtype=torch.uint8)
    for name, content in sidecars.items():
        state[f"hf_asset__{name}"] = torch.frombuffer(bytearray(json.dumps(content).encode()), dtype=torch.uint8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(state, out, metadata={"format": "pt", "gemma_config": json.dumps(cfg.to_hf_dict())})
    return out
