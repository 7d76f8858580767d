"""Gemma-3 text encoders in GGUF (llama.cpp's ``convert_hf_to_gguf.py`` layout, architecture ``gemma3``).

* :func:`open_gemma_gguf` validates the file (magic, header, architecture, truncation) and returns a
  :class:`GemmaGGUFTensors`: a lazy mapping from ``Gemma3TextModel`` names to tensors that :func:`~.gemma.build_gemma`
  fills the model from. Norm weights come back as Hugging Face's ``w`` (llama.cpp stores ``1 + w``, see
  ``gguf_loader.names``); quantised Linear weights can stay quantised (:meth:`GemmaGGUFTensors.quantized_type`,
  raw GGML blocks through :meth:`GemmaGGUFTensors.raw`) and become ``gguf_loader.GGUFLinear`` layers.
* :func:`gemma_config_from_gguf` turns the ``gemma3.*`` metadata into a :class:`GemmaConfig`; the values GGUF does
  not store come from Gemma-3's defaults (:data:`~.gemma.KNOWN_SIZES` for the known widths).
* :func:`gguf_tokenizer_bytes` rebuilds the SentencePiece model from ``tokenizer.ggml.*``.

Opening a GGUF parses its whole vocabulary in Python (about 25 s for Gemma-3's 262 144 pieces), so the tokenizer
model built while loading the weights is remembered (:data:`_TOKENIZER_CACHE`, keyed by path, size and mtime) and
``load_gemma`` + ``load_gemma_tokenizer`` on the same file parse it once.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ...gguf_loader import GGUFError, GGUFFile, check_supported, gemma3_config, gemma3_hf_name
from ...gguf_loader.names import GEMMA3_ARCHITECTURE, GEMMA_NORM_SHIFT, is_gemma_norm
from ...gguf_loader.reader import STORED_DTYPES
from ..errors import CheckpointError, ConfigError
from ..text.gemma_config import GemmaConfig
from ..text.tokenizer_gguf import sentencepiece_model_bytes

if TYPE_CHECKING:
    from gguf import GGMLQuantizationType

_SKIPPED = ("lm_head.",)  # an untied output head (Gemma-3 ties it to the embeddings); not part of the text model
_TOKENIZER_CACHE: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
_CACHE_SIZE = 2


def _wrap(exc: GGUFError) -> CheckpointError:
    return CheckpointError(str(exc))


def _cache_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


class GemmaGGUFTensors(Mapping[str, torch.Tensor]):
    """Lazy ``Gemma3TextModel`` name → tensor mapping over one GGUF file; each access dequantises one tensor.

    ``shape(name)`` answers from the header; ``read(name, dtype=, device=)`` dequantises (norm weights shifted back
    to ``w``); ``quantized_type(name)`` is the GGML type of a block-quantised tensor (None for F32/F16/BF16) and
    ``raw(name, device)`` its stored blocks ``(out, in_bytes)`` uint8 (a view of the memory map on CPU)."""

    def __init__(self, file: GGUFFile, *, what: str) -> None:
        self.file, self.what = file, what
        self.files = ()  # no safetensors metadata to look a config up in (see gemma_config_for)
        self._keys: dict[str, str] = {}
        for key in file.tensors:
            try:
                name = gemma3_hf_name(key).removeprefix("model.")
            except GGUFError as exc:
                raise CheckpointError(f"{what}: {exc} The file is not a llama.cpp Gemma-3 conversion.") from exc
            if not name.startswith(_SKIPPED):
                self._keys[name] = key
        for key in self._keys.values():
            try:
                check_supported(file.tensors[key].qtype, f"{what}: tensor {key}")
            except GGUFError as exc:
                raise _wrap(exc) from exc

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.read(name)

    def __contains__(self, name: object) -> bool:
        return name in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.file.tensors[self._keys[name]].shape

    def quantized_type(self, name: str) -> GGMLQuantizationType | None:
        qtype = self.file.tensors[self._keys[name]].qtype
        return None if qtype in STORED_DTYPES else qtype

    def raw(self, name: str, device: torch.device | str = "cpu") -> torch.Tensor:
        device = torch.device(device)
        try:
            return self.file.raw(self._keys[name], "cpu" if device.type == "meta" else device)
        except GGUFError as exc:
            raise _wrap(exc) from exc

    def read(self, name: str, *, dtype: torch.dtype | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        """One tensor, dequantised into ``dtype`` (None: float32) on ``device``."""
        device = torch.device(device)
        device = torch.device("cpu") if device.type == "meta" else device
        dtype = dtype or torch.float32
        try:
            if is_gemma_norm(name):  # 1 + w → w in float32, as llama.cpp's converter added it
                return (self.file.tensor(self._keys[name], torch.float32, device) - GEMMA_NORM_SHIFT).to(dtype)
            return self.file.tensor(self._keys[name], dtype, device)
        except GGUFError as exc:
            raise _wrap(exc) from exc


def open_gemma_gguf(path: str | os.PathLike) -> GemmaGGUFTensors:
    """Validate a Gemma-3 GGUF (readable, complete, architecture ``gemma3``, known tensor names and types)."""
    path = Path(path)
    try:
        file = GGUFFile(path)
        file.check_data()
        file.require_architecture(GEMMA3_ARCHITECTURE, what="a Gemma-3 text encoder", allow_missing=False)
    except GGUFError as exc:
        raise _wrap(exc) from exc
    tensors = GemmaGGUFTensors(file, what=path.name)
    _remember_tokenizer(file)
    return tensors


def gemma_config_from_gguf(file: GGUFFile) -> GemmaConfig:
    """:class:`GemmaConfig` from the ``gemma3.*`` metadata (through ``gguf_loader.gemma3_config``).

    GGUF does not store ``query_pre_attn_scalar`` nor always the global RoPE scaling: for the known Gemma-3 widths
    they come from :data:`KNOWN_SIZES` (27B: 168; 4B/12B/27B: linear factor 8 when the file has no
    ``gemma3.rope.scaling.factor``), otherwise ``head_dim`` and no scaling."""
    from .gemma import KNOWN_SIZES

    try:
        cfg = gemma3_config(file)
    except GGUFError as exc:
        raise _wrap(exc) from exc
    known = KNOWN_SIZES.get(int(cfg["hidden_size"]))
    factor = cfg.get("rope_scaling_factor") or (known[1] if known else 1.0)
    hf: dict[str, Any] = {
        "model_type": "gemma3_text",
        **{k: cfg[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                               "num_attention_heads", "num_key_value_heads", "head_dim", "sliding_window",
                               "max_position_embeddings", "rope_theta", "rope_local_base_freq")},
        # stored as float32: 9.99999997e-07 is Gemma's 1e-6
        "rms_norm_eps": float(f"{float(cfg['rms_norm_eps']):.6g}"),
        "query_pre_attn_scalar": known[2] if known else cfg["query_pre_attn_scalar"],
        "rope_scaling": {"rope_type": "linear", "factor": float(factor)} if float(factor) != 1.0 else None,
        "sliding_window_pattern": int(file.metadata.get("gemma3.attention.sliding_window_pattern", 6)),
    }
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if key in cfg:
            hf[key] = cfg[key]
    try:
        return GemmaConfig.from_hf_dict(hf)
    except ConfigError as exc:
        raise CheckpointError(f"{file.path.name}: its gemma3 metadata describes no valid Gemma-3 ({exc}).") from exc


def _remember_tokenizer(file: GGUFFile) -> bytes | None:
    """Build the SentencePiece model of ``file`` and keep it for :func:`gguf_tokenizer_bytes` (None when the file
    has no vocabulary: the weights still load)."""
    try:
        model = sentencepiece_model_bytes(file.metadata, what=file.path.name)
    except CheckpointError:
        return None
    key = _cache_key(file.path)
    _TOKENIZER_CACHE[key] = model
    _TOKENIZER_CACHE.move_to_end(key)
    while len(_TOKENIZER_CACHE) > _CACHE_SIZE:
        _TOKENIZER_CACHE.popitem(last=False)
    return model


def gguf_tokenizer_bytes(path: str | os.PathLike) -> bytes:
    """The serialised SentencePiece model of a Gemma-3 GGUF's vocabulary (cached per file version)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Gemma text encoder not found: {path}")
    cached = _TOKENIZER_CACHE.get(_cache_key(path))
    if cached is not None:
        return cached
    try:
        file = GGUFFile(path)
        file.require_architecture(GEMMA3_ARCHITECTURE, what="a Gemma-3 text encoder", allow_missing=False)
    except GGUFError as exc:
        raise _wrap(exc) from exc
    return _remember_tokenizer(file) or sentencepiece_model_bytes(file.metadata, what=path.name)
