"""The tiny files the parser fuzzer mutates, one per kind, and what each case runs on a mutated file.

Every kind is a :class:`Kind`: ``build(path)`` writes the valid seed file (official layouts, as small as the
architecture allows) and returns its ``config`` JSON (None when the file carries none); ``steps`` are the calls a user
makes on such a file — read → ``info`` → load — each run on its own so later steps are exercised when an earlier one
refuses the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gguf import GGMLQuantizationType as Q
from safetensors.torch import save_file

from rs_ltxv.gguf_loader import GGUFFile
from rs_ltxv.gguf_loader.writer import write_gguf
from rs_ltxv.ltx.loading import info, load_text_connectors, load_transformer, open_checkpoint
from rs_ltxv.ltx.loading.audio import load_audio_vae, open_audio_checkpoint
from rs_ltxv.ltx.loading.gemma_gguf import gguf_tokenizer_bytes
from rs_ltxv.ltx.loading.gguf_info import describe as gguf_describe
from rs_ltxv.ltx.loading.safetensors_file import SafetensorsFile
from rs_ltxv.ltx.loading.upsampler import load_upsampler
from rs_ltxv.ltx.loading.video_vae import load_video_vae, open_video_vae
from rs_ltxv.ltx.text.tokenizer import GemmaTokenizer
from rs_ltxv.ltx.tiny import tiny_config, tiny_state_dict
from rs_ltxv.ltx.tiny_parts import tiny_component_config, tiny_component_state

Step = Callable[[Path], Any]
VAE_LATENT = 4  # video VAE latent channels of the seeds: a 1 MB VAE instead of 10 MB keeps each case cheap
Builder = Callable[[Path], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Kind:
    """One kind of model file: ``suffix`` of its name, ``fmt`` (``"safetensors"``, ``"gguf"`` or ``"bytes"``: mutated
    by bytes only), ``build(path)`` writing the valid file and returning its stored config (None: it has none), and
    the ``steps`` a case runs."""

    name: str
    suffix: str
    fmt: str
    build: Builder
    steps: tuple[tuple[str, Step], ...]


def _transformer_state(layers: int = 1) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    cfg = tiny_config("2.3", layers=layers, latent_channels=16, audio_channels=1)
    return {"transformer": cfg.to_dict()}, tiny_state_dict(cfg, seed=3)


def _save(path: Path, state: dict[str, torch.Tensor], config: dict[str, Any] | None) -> dict[str, Any] | None:
    metadata = {"config": json.dumps(config), "model_version": "2.3.0-tiny"} if config is not None else None
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata=metadata)
    return config


def build_ltx_full(path: Path) -> dict[str, Any] | None:
    """The official single file: transformer (1 layer) + connectors + video VAE (4 latent channels) + audio VAE +
    vocoder, bf16."""
    base, state = _transformer_state()
    parts = tiny_component_config(latent_channels=VAE_LATENT, audio_channels=1)
    base.update(parts)
    state.update(tiny_component_state(parts, seed=4))
    return _save(path, {k: v.to(torch.bfloat16) for k, v in state.items()}, base)


def build_transformer(path: Path) -> dict[str, Any] | None:
    """A ComfyUI-style split diffusion-model file: transformer tensors only, no metadata (config inferred)."""
    _, state = _transformer_state()
    state = {k: v for k, v in state.items() if k.startswith("model.diffusion_model.")}
    return _save(path, state, None)


def build_gguf(path: Path) -> dict[str, Any] | None:
    """The transformer (+ connectors + projection) as GGUF: 2-D weights whose rows fit Q8_0 blocks quantised, the
    rest F32; ``config`` metadata as in the official file."""
    base, state = _transformer_state()

    def qtype(name: str, tensor: torch.Tensor) -> Q:
        return Q.Q8_0 if tensor.ndim == 2 and tensor.shape[-1] % 32 == 0 else Q.F32

    write_gguf(path, {k: v.float() for k, v in state.items()}, qtype, metadata={"config": json.dumps(base)})
    return base


def build_video_vae(path: Path) -> dict[str, Any] | None:
    """ComfyUI's split video VAE file: ``encoder.*`` / ``decoder.*`` / statistics without prefix, no metadata (the
    config is inferred), bf16."""
    parts = tiny_component_config(latent_channels=VAE_LATENT, audio_channels=1)
    state = {k[len("vae."):]: v.to(torch.bfloat16) for k, v in tiny_component_state(parts, seed=5).items()
             if k.startswith("vae.")}
    return _save(path, state, None)


def build_audio(path: Path) -> dict[str, Any] | None:
    """The audio VAE + vocoder file with its ``audio_vae`` / ``vocoder`` config sections."""
    parts = tiny_component_config(latent_channels=VAE_LATENT, audio_channels=1)
    state = {k: v for k, v in tiny_component_state(parts, seed=6).items() if k.startswith(("audio_vae.", "vocoder."))}
    base = {"audio_vae": parts["audio_vae"], "vocoder": parts["vocoder"]}
    return _save(path, state, base)


def build_upsampler(path: Path) -> dict[str, Any] | None:
    """A 2× spatial latent upsampler (16 channels, one block per stage) with its flat config."""
    from rs_ltxv.ltx.random_weights import random_init
    from rs_ltxv.ltx.upsampler import LatentUpsampler, UpsamplerConfig

    cfg = UpsamplerConfig(in_channels=16, mid_channels=32, num_blocks_per_stage=1)
    state = random_init(LatentUpsampler(cfg), seed=7).state_dict()
    base = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}
    return _save(path, state, base)


_SPM: dict[str, bytes] = {}


def tiny_sentencepiece() -> bytes:
    """A tiny BPE SentencePiece model (Gemma's settings: byte fallback, pad/eos/bos/unk = 0/1/2/3), trained once."""
    if "model" not in _SPM:
        import io

        import sentencepiece as spm

        out = io.BytesIO()
        corpus = ["A red fox runs through a snowy forest at dawn.", "Waves crash on a rocky shore; thunder rolls."]
        spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus * 20), model_writer=out, vocab_size=300,
                                       model_type="bpe", byte_fallback=True, pad_id=0, eos_id=1, bos_id=2, unk_id=3,
                                       character_coverage=1.0, minloglevel=2)
        _SPM["model"] = out.getvalue()
    return _SPM["model"]


def build_tokenizer(path: Path) -> None:
    """A Gemma-style SentencePiece ``tokenizer.model``."""
    path.write_bytes(tiny_sentencepiece())


def build_tokenizer_json(path: Path) -> None:
    """A Hugging Face ``tokenizer.json`` (byte-level BPE with ``<bos>``) trained on a tiny corpus."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"],
                                  show_progress=False)
    tok.train_from_iterator(["A red fox runs through a snowy forest at dawn."] * 20, trainer)
    tok.save(str(path))


def build_gemma_vocab(path: Path) -> None:
    """A ``gemma3`` GGUF holding the tokenizer vocabulary (``tokenizer.ggml.*``) and one tiny tensor."""
    from gguf import GGUFWriter
    from sentencepiece import sentencepiece_model_pb2 as pb

    model = pb.ModelProto()
    model.ParseFromString(tiny_sentencepiece())
    writer = GGUFWriter(str(path), arch="gemma3")
    writer.add_tokenizer_model("llama")
    writer.add_token_list([p.piece for p in model.pieces])
    writer.add_token_scores([p.score for p in model.pieces])
    writer.add_token_types([int(p.type) for p in model.pieces])
    for kind, value in (("bos", 2), ("eos", 1), ("pad", 0), ("unk", 3)):
        getattr(writer, f"add_{kind}_token_id")(value)
    writer.add_tensor("token_embd.weight", np.ones((len(model.pieces), 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _load_ltx(path: Path) -> None:
    ckpt = open_checkpoint(path)
    load_transformer(ckpt)


def _load_connectors(path: Path) -> None:
    load_text_connectors(open_checkpoint(path))


def _tokenize(path: Path) -> None:
    GemmaTokenizer.from_file(path)("a red fox")


def _gguf_tokenize(path: Path) -> None:
    GemmaTokenizer.from_bytes(gguf_tokenizer_bytes(path))("a red fox")


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("ltx_full", ".safetensors", "safetensors", build_ltx_full, (
        ("read", SafetensorsFile), ("info", info.describe), ("transformer", _load_ltx),
        ("connectors", _load_connectors), ("video_vae", load_video_vae), ("audio_vae", load_audio_vae))),
    Kind("transformer", ".safetensors", "safetensors", build_transformer, (
        ("read", SafetensorsFile), ("info", info.describe), ("transformer", _load_ltx))),
    Kind("gguf", ".gguf", "gguf", build_gguf, (
        ("read", GGUFFile), ("info", gguf_describe), ("transformer", _load_ltx))),
    Kind("video_vae", ".safetensors", "safetensors", build_video_vae, (
        ("read", open_video_vae), ("load", load_video_vae))),
    Kind("audio", ".safetensors", "safetensors", build_audio, (
        ("read", open_audio_checkpoint), ("load", load_audio_vae))),
    Kind("upsampler", ".safetensors", "safetensors", build_upsampler, (("load", load_upsampler),)),
    Kind("tokenizer", ".model", "bytes", build_tokenizer, (("tokenize", _tokenize),)),
    Kind("tokenizer_json", ".json", "bytes", build_tokenizer_json, (("tokenize", _tokenize),)),
    Kind("gemma_vocab", ".gguf", "gguf", build_gemma_vocab, (
        ("read", GGUFFile), ("info", gguf_describe), ("tokenize", _gguf_tokenize))),
)}
