"""Malformed model files end in a project error (``CheckpointError`` / ``ConfigError`` / ``GGUFError``) that names the
file and the field, in under 2 s and 300 MB — never a raw ``TypeError`` / ``KeyError`` / ``SafetensorError`` …, a hang
or gigabytes of memory.

Two parts, both run in forked children with a deadline and a memory cap (``reference/fuzz_run.py``):

* a table of regressions: every example of the issue (``num_layers`` 10⁹, a GGUF array whose count exceeds the file,
  10⁵ metadata keys, negative / reversed / overlapping offsets, unknown dtypes) and more of each kind;
* a seeded fuzz run: a few hundred mutations of tiny files of each kind (LTX single file with config, split
  transformer, GGUF transformer, video VAE, audio VAE + vocoder, upsampler, SentencePiece ``tokenizer.model``,
  ``tokenizer.json``, GGUF vocabulary), each read → ``info`` → load. ``benchmarks/fuzz_parsers.py`` runs thousands.
"""

from __future__ import annotations

import json
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gguf import GGUFWriter
from safetensors.torch import load, save

from rs_ltxv.gguf_loader import GGUFFile
from rs_ltxv.ltx.loading import info, load_transformer, open_checkpoint
from rs_ltxv.ltx.loading.audio import load_audio_vae
from rs_ltxv.ltx.loading.gemma_gguf import gguf_tokenizer_bytes
from rs_ltxv.ltx.loading.gguf_info import describe as gguf_describe
from rs_ltxv.ltx.loading.safetensors_file import SafetensorsFile
from rs_ltxv.ltx.loading.upsampler import load_upsampler
from rs_ltxv.ltx.loading.video_vae import load_video_vae
from rs_ltxv.ltx.text.tokenizer import GemmaTokenizer

from reference import fuzz_gguf
from reference.fuzz_files import KINDS
from reference.fuzz_mutate import st_join, st_split
from reference.fuzz_run import fuzz, run_isolated, summary, warm_up

MAX_CPU_S = 2.0
MAX_RSS_MB = 300.0
PROJECT = {"CheckpointError", "ConfigError", "GGUFError", "UnsupportedQuantError"}
#: mutations per kind in CI (the costly kinds load a whole tiny model per case)
CI_CASES = {"ltx_full": 200, "transformer": 300, "gguf": 200, "video_vae": 300, "audio": 300, "upsampler": 300,
            "tokenizer": 300, "tokenizer_json": 300, "gemma_vocab": 300}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, tuple[bytes, Any]]:
    folder = tmp_path_factory.mktemp("fuzz-seeds")
    out = {}
    for name, kind in KINDS.items():
        path = folder / f"{name}{kind.suffix}"
        stored = kind.build(path)
        warm_up(kind, path)
        out[name] = (path.read_bytes(), stored)
    return out


# ----------------------------------------------------------------------------------------------- file surgery


def header(edit: Callable[[dict], Any]) -> Callable[[bytes, Any], bytes]:
    """A mutation editing the parsed safetensors header in place."""
    def mutate(data: bytes, config: Any) -> bytes:
        head, body = st_split(data)
        edit(head)
        return st_join(json.dumps(head), body)
    return mutate


def tensor(field: str, value: Callable[[list, list], Any], index: int = 3,
           prefix: str = "") -> Callable[[bytes, Any], bytes]:
    """Set ``field`` of the ``index``-th tensor (by offset) among those named ``prefix…`` to ``value(its offsets,
    the previous tensor's)``."""
    def edit(head: dict) -> None:
        names = sorted((k for k in head if k != "__metadata__"), key=lambda k: head[k]["data_offsets"])
        at = [i for i, k in enumerate(names) if k.startswith(prefix)][index]
        head[names[at]][field] = value(head[names[at]]["data_offsets"], head[names[at - 1]]["data_offsets"])
    return header(edit)


def config(path: tuple, value: Any, raw: str | None = None) -> Callable[[bytes, Any], bytes]:
    """Set ``config[path]`` in the safetensors metadata or the GGUF ``config`` key (``raw``: the whole text)."""
    def mutate(data: bytes, cfg: Any) -> bytes:
        cfg = json.loads(json.dumps(cfg))
        node = cfg
        for step in path[:-1]:
            node = node[step]
        if path:
            node[path[-1]] = value
        text = raw if raw is not None else json.dumps(cfg)
        if data.startswith(b"GGUF"):
            return fuzz_gguf.replace_string(data, "config", text)
        head, body = st_split(data)
        head["__metadata__"]["config"] = text
        return st_join(json.dumps(head), body)
    return mutate


def gguf(what: str, value: Callable[[int, int], int], key: str | None = None, nth: int = 0):
    """Set the ``nth`` GGUF header field ``what`` (inside metadata ``key`` when given) to ``value(old, left)``."""
    def mutate(data: bytes, cfg: Any) -> bytes:
        layout = fuzz_gguf.walk(data)
        lo, hi = layout.values[key] if key else (0, len(data))
        field = [f for f in layout.fields if f.what == what and lo <= f.offset < hi][nth]
        old = int.from_bytes(data[field.offset:field.offset + field.width], "little")
        return fuzz_gguf.set_field(data, field, value(old, len(data) - field.offset))
    return mutate


def raw_header(text: str) -> Callable[[bytes, Any], bytes]:
    return lambda data, cfg: st_join(text, b"")


def without(prefix: str) -> Callable[[bytes, Any], bytes]:
    """The file written again without its first tensor named ``prefix…`` (a complete file, one tensor short)."""
    def mutate(data: bytes, cfg: Any) -> bytes:
        state = load(data)
        del state[sorted(k for k in state if k.startswith(prefix))[0]]
        return save(state, metadata={"config": json.dumps(cfg)})
    return mutate


def vocabulary_of_numbers(data: bytes, cfg: Any) -> bytes:
    """A ``gemma3`` GGUF whose ``tokenizer.ggml.tokens`` is an array of integers."""
    path = Path(tempfile.mkdtemp()) / "vocabulary.gguf"
    writer = GGUFWriter(str(path), arch="gemma3")
    writer.add_tokenizer_model("llama")
    writer.add_array("tokenizer.ggml.tokens", [1, 2, 3])
    writer.add_token_scores([0.0, 0.0, 0.0])
    writer.add_token_types([1, 1, 1])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


# ----------------------------------------------------------------------------------------------- the table

READ, INFO = SafetensorsFile, info.describe


def _load(path: Path) -> None:
    load_transformer(open_checkpoint(path))


def _tokens(path: Path) -> None:
    GemmaTokenizer.from_bytes(gguf_tokenizer_bytes(path))("a fox")


HUGE = 10**9
BLOCK = "model.diffusion_model.transformer_blocks.0."
# (id, seed kind, mutation, what is called, accepted error classes, a word the message must contain)
CASES: list[tuple[str, str, Callable, Callable, set[str], str]] = [
    ("num_layers 1e9 in the metadata config", "ltx_full", config(("transformer", "num_layers"), HUGE), _load,
     {"ConfigError"}, "num_layers"),
    ("num_layers 1e9 in the metadata config, info", "ltx_full", config(("transformer", "num_layers"), HUGE), INFO,
     {"ConfigError"}, "num_layers"),
    ("num_layers 1e9 inferred from a tensor name", "transformer",
     header(lambda h: h.update({"model.diffusion_model.transformer_blocks.999999999.attn1.to_q.weight":
                                h.pop("model.diffusion_model.transformer_blocks.0.attn1.to_q.weight")})),
     _load, {"ConfigError"}, "num_layers"),
    ("num_layers 1e9 in a GGUF config", "gguf", config(("transformer", "num_layers"), HUGE), _load,
     {"ConfigError"}, "num_layers"),
    ("connector heads 1e9", "ltx_full", config(("transformer", "connector_num_attention_heads"), HUGE), INFO,
     {"ConfigError"}, "connector_num_attention_heads"),
    ("num_layers a string", "ltx_full", config(("transformer", "num_layers"), "48"), INFO, {"ConfigError"},
     "num_layers"),
    ("norm_eps NaN", "ltx_full", config(("transformer", "norm_eps"), float("nan")), INFO, {"ConfigError"},
     "norm_eps"),
    ("positional_embedding_max_pos null", "ltx_full", config(("transformer", "positional_embedding_max_pos"), None),
     INFO, {"ConfigError"}, "positional_embedding_max_pos"),
    ("video VAE multiplier 1e9", "ltx_full", config(("vae", "decoder_blocks", 1, 1, "multiplier"), HUGE),
     load_video_vae, {"ConfigError"}, "multiplier"),
    ("audio VAE ch_mult a number", "audio", config(("audio_vae", "model", "params", "ddconfig", "ch_mult"), 1e308),
     load_audio_vae, {"ConfigError"}, "ch_mult"),
    ("audio n_fft 1e9", "audio", config(("audio_vae", "preprocessing", "stft", "filter_length"), HUGE),
     load_audio_vae, {"ConfigError"}, "filter_length"),
    ("vocoder dilations not lists", "audio", config(("vocoder", "resblock_dilation_sizes"), [1, 2, 3]),
     load_audio_vae, {"ConfigError"}, "resblock_dilation_sizes"),
    ("upsampler num_blocks_per_stage 1e9", "upsampler", config(("num_blocks_per_stage",), HUGE), load_upsampler,
     {"ConfigError"}, "num_blocks_per_stage"),
    ("config nested 10⁵ deep", "ltx_full", config((), None, raw="[" * 100_000 + "]" * 100_000), INFO,
     {"CheckpointError"}, "config"),
    ("config with a 5000-digit integer", "ltx_full", config((), None, raw='{"transformer": {"num_layers": '
                                                            + "9" * 5000 + "}}"), INFO, {"CheckpointError"}, "config"),
    ("config a JSON list", "ltx_full", config((), None, raw="[1, 2]"), INFO, {"CheckpointError"}, "object"),
    ("100000 metadata keys", "ltx_full", header(lambda h: h["__metadata__"].update(
        {f"k{i}": "v" for i in range(100_000)})), READ, {"CheckpointError"}, "keys"),
    ("metadata value not a string", "ltx_full", header(lambda h: h["__metadata__"].update(model_version=5)), READ,
     {"CheckpointError"}, "model_version"),
    ("negative offsets", "transformer", tensor("data_offsets", lambda o, p: [-8, o[1]]), INFO, {"CheckpointError"},
     "data_offsets"),
    ("reversed offsets", "transformer", tensor("data_offsets", lambda o, p: [o[1], o[0]]), INFO,
     {"CheckpointError"}, "data_offsets"),
    ("overlapping offsets", "transformer", tensor("data_offsets", lambda o, p: [o[0] - 2, o[1] - 2]), INFO,
     {"CheckpointError"}, "overlap"),
    ("offsets of another tensor", "transformer", tensor("data_offsets", lambda o, p: list(p)), INFO,
     {"CheckpointError"}, "data_offsets"),
    ("offsets past the end", "transformer", tensor("data_offsets", lambda o, p: [o[0] + 10**12, o[1] + 10**12]),
     INFO, {"CheckpointError"}, "truncated"),
    ("unknown dtype", "transformer", tensor("dtype", lambda o, p: "F99"), INFO, {"CheckpointError"}, "dtype"),
    ("dtype of another size", "transformer", tensor("dtype", lambda o, p: "F64"), INFO, {"CheckpointError"}, "bytes"),
    ("integer dtype for a float weight", "transformer", tensor("dtype", lambda o, p: "I32", prefix=BLOCK), _load,
     {"CheckpointError"}, "integers"),
    ("shape with a bool", "transformer", tensor("shape", lambda o, p: [True]), INFO, {"CheckpointError"}, "shape"),
    ("bytes after the last tensor", "video_vae", lambda d, c: d + b"\0" * 16, load_video_vae, {"CheckpointError"},
     "follow"),
    ("header is a JSON list", "transformer", raw_header("[1]"), READ, {"CheckpointError"}, "object"),
    ("header nested 10⁵ deep", "transformer", raw_header('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"), READ,
     {"CheckpointError"}, "header"),
    ("duplicate tensor name", "transformer", raw_header('{"a": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]},'
                                                        ' "a": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}}'),
     READ, {"CheckpointError"}, "twice"),
    ("header length 2⁶³", "transformer", lambda d, c: struct.pack("<Q", 2**63) + d[8:], READ, {"CheckpointError"},
     "header length"),
    ("missing tensor", "upsampler", without("res_blocks."), load_upsampler, {"CheckpointError"}, "missing"),
    ("GGUF array count larger than the file", "gemma_vocab", gguf("array_count", lambda old, left: 2**40,
                                                                  "tokenizer.ggml.tokens"),
     GGUFFile, {"GGUFError"}, "tokenizer.ggml.tokens"),
    ("GGUF array count one more than the bytes left", "gemma_vocab",
     gguf("array_count", lambda old, left: left // 4 + 1, "tokenizer.ggml.scores"), gguf_describe,
     {"CheckpointError"}, "tokenizer.ggml.scores"),
    ("GGUF 2⁶⁴−1 metadata keys", "gguf", gguf("kv_count", lambda old, left: 2**64 - 1), _load,
     {"CheckpointError"}, "metadata keys"),
    ("GGUF 10⁹ tensors", "gguf", gguf("tensor_count", lambda old, left: HUGE), gguf_describe, {"CheckpointError"},
     "tensors"),
    ("GGUF string length 2⁶³", "gguf", gguf("string_length", lambda old, left: 2**63, "config"), gguf_describe,
     {"CheckpointError"}, "config"),
    ("GGUF 100000 metadata keys", "gemma_vocab", lambda d, c: fuzz_gguf.insert_strings(d, 100_000), GGUFFile,
     {"GGUFError"}, "keys"),
    ("GGUF 9 dimensions", "gguf", gguf("n_dims", lambda old, left: 9), _load, {"CheckpointError"}, "dimensions"),
    ("GGUF unknown tensor type", "gguf", gguf("tensor_type", lambda old, left: 200), gguf_describe,
     {"CheckpointError"}, "GGML type"),
    ("GGUF overlapping tensor data", "gguf", gguf("tensor_offset", lambda old, left: 0, nth=5), _load,
     {"CheckpointError"}, "overlap"),
    ("GGUF unknown value type", "gemma_vocab", gguf("value_type", lambda old, left: 99), GGUFFile, {"GGUFError"},
     "value type"),
    ("GGUF vocabulary of numbers", "gemma_vocab", vocabulary_of_numbers, _tokens, {"CheckpointError"},
     "tokenizer.ggml.tokens"),
    ("tokenizer.model of random bytes", "tokenizer", lambda d, c: bytes(range(256)) * 8,
     lambda p: GemmaTokenizer.from_file(p), {"CheckpointError"}, "tokenizer"),
]


@pytest.mark.parametrize(("kind", "mutation", "call", "errors", "word"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_malformed_file_is_a_project_error(seeds, tmp_path, kind, mutation, call, errors, word):
    data, cfg = seeds[kind]
    path = tmp_path / f"bad{KINDS[kind].suffix}"
    path.write_bytes(mutation(data, cfg))
    result = run_isolated(lambda: call(path), deadline_s=20)
    assert result.outcome in errors, f"{result.outcome}: {result.message}"
    assert word.lower() in result.message.lower(), result.message
    assert path.name in result.message, result.message
    assert result.cpu_s < MAX_CPU_S, f"{result.cpu_s:.2f} s CPU"
    assert result.rss_mb < MAX_RSS_MB, f"{result.rss_mb:.0f} MB"


def test_tokenizer_json_garbage_is_a_project_error(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text('{"model": {"type": "BPE", "vocab": 5}}')
    result = run_isolated(lambda: GemmaTokenizer.from_file(path))
    assert result.outcome == "CheckpointError", result.message


def test_seeded_fuzz_only_project_errors():
    """A few hundred seeded mutations of each kind: only project errors or success, each case under 2 s CPU and
    300 MB. Prints the outcome counts (``pytest -s``)."""
    assert set(CI_CASES) == set(KINDS)
    start = time.monotonic()
    results = fuzz(list(KINDS), CI_CASES, seed=2024, deadline_s=20)
    text = summary(results)
    print(f"\n{text}\n{len(results)} cases in {time.monotonic() - start:.1f} s")
    bad = [r for r in results if r.outcome not in PROJECT | {"ok"}]
    slow = [r for r in results if r.cpu_s >= MAX_CPU_S]
    large = [r for r in results if r.rss_mb >= MAX_RSS_MB]
    assert len(results) == sum(CI_CASES.values())
    assert not bad, "\n".join(f"{r.kind}#{r.index} {r.label!r}: {r.outcome} {r.message}" for r in bad[:20])
    assert not slow, [(r.kind, r.index, r.label, r.cpu_s) for r in slow]
    assert not large, [(r.kind, r.index, r.label, r.rss_mb) for r in large]
