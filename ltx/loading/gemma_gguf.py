"""Gemma-3 text encoders in GGUF (llama.cpp's ``convert_hf_to_gguf.py`` layout, architecture ``gemma3``).

* :func:`open_gemma_gguf` validates the file (magic, header, architecture, truncation) and returns a
  :class:`GemmaGGUFTensors`: the :class:`~.source.TensorSource` under ``Gemma3TextModel`` names that
  :func:`~.gemma.build_gemma` fills the model from. Norm weights come back as Hugging Face's ``w`` (llama.cpp stores
  ``1 + w``, see ``gguf_loader.names``); quantised Linear weights can stay quantised
  (:meth:`GemmaGGUFTensors.quantized_type`, raw GGML blocks through :meth:`GemmaGGUFTensors.read_quantized`) and
  become ``gguf_loader.GGUFLinear`` layers.
* :func:`gemma_hf_config_from_gguf` turns the ``gemma3.*`` metadata into a Hugging Face config dict (the source's
  ``config()``); the values GGUF does not store come from Gemma-3's defaults
  (:data:`~rs_ltxv.ltx.text.gemma_config.KNOWN_SIZES` for the known widths).
* :func:`gguf_tokenizer_bytes` rebuilds the SentencePiece model from ``tokenizer.ggml.*``.

Opening a GGUF parses its whole vocabulary in Python (about 25 s for Gemma-3's 262 144 pieces), so the tokenizer
model built while loading the weights is remembered (:data:`_TOKENIZER_CACHE`, keyed by path, size and mtime) and
``load_gemma`` + ``load_gemma_tokenizer`` on the same file parse it once.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ...gguf_loader import GGUFError, GGUFFile, check_supported, gemma3_config, gemma3_hf_name
from ...gguf_loader.names import GEMMA3_ARCHITECTURE, GEMMA_NORM_SHIFT, is_gemma_norm
from ...gguf_loader.reader import STORED_DTYPES
from ..errors import CheckpointError
from ..text.gemma_config import KNOWN_SIZES
from ..text.tokenizer_gguf import sentencepiece_model_bytes
from .source import TensorInfo, read_device

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


class GemmaGGUFTensors:
    """``Gemma3TextModel`` names over one GGUF file as a :class:`~.source.TensorSource`; each read dequantises one
    tensor.

    ``tensors`` answers from the header; :meth:`read` dequantises (norm weights shifted back to ``w``);
    :meth:`quantized_type` is the GGML type of a block-quantised tensor (None for F32/F16/BF16) and
    :meth:`read_quantized` its stored blocks ``(out, in_bytes)`` uint8 (a view of the memory map on CPU).

    The names are ``gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA3, n)`` read backwards (``gguf_loader.names``);
    ComfyUI-GGUF's ``loader.gguf_clip_loader`` does the same for llama names (``LLAMA_SD_MAP``) but has no Gemma-3.

    Raises:
        CheckpointError: a tensor name that is not Gemma-3's, or a type RS-LTXV cannot dequantise.
    """

    def __init__(self, file: GGUFFile, *, what: str) -> None:
        self.file, self.name, self.what = file, what, what
        self.metadata: dict[str, Any] = file.metadata
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
        self.tensors: dict[str, TensorInfo] = {
            name: TensorInfo(t.type_name, t.shape, t.nbytes) for name, key in self._keys.items()
            for t in (file.tensors[key],)}

    def config(self) -> dict[str, Any]:
        """The Hugging Face config the ``gemma3.*`` metadata describes (:func:`gemma_hf_config_from_gguf`)."""
        return gemma_hf_config_from_gguf(self.file)

    def quantized_type(self, name: str) -> GGMLQuantizationType | None:
        """The GGML type of ``name`` when it is block-quantised (loads as a ``GGUFLinear``), None for
        F32/F16/BF16."""
        qtype = self.file.tensors[self._keys[name]].qtype
        return None if qtype in STORED_DTYPES else qtype

    def read_quantized(self, name: str, *, device: torch.device) -> torch.Tensor:
        """The stored blocks of ``name``: uint8 of shape ``(out, in_bytes)`` on ``device`` (on CPU a view of the
        memory map).

        Raises:
            CheckpointError: the tensor's data is truncated.
        """
        try:
            return self.file.raw(self._keys[name], read_device(device))
        except GGUFError as exc:
            raise _wrap(exc) from exc

    def read_tensor(self, name: str, *, dtype: torch.dtype | None = None,
                    device: torch.device | str = "cpu") -> torch.Tensor:
        """One tensor in its logical torch-order shape, dequantised into ``dtype`` (None: float32) on ``device``.

        Raises:
            CheckpointError: the tensor's data is truncated or of a type that cannot be dequantised.
        """
        device = read_device(device)
        dtype = dtype or torch.float32
        try:
            if is_gemma_norm(name):  # 1 + w → w in float32, as llama.cpp's converter added it
                return (self.file.tensor(self._keys[name], torch.float32, device) - GEMMA_NORM_SHIFT).to(dtype)
            return self.file.tensor(self._keys[name], dtype, device)
        except GGUFError as exc:
            raise _wrap(exc) from exc

    def read(self, names: Mapping[str, str], *, dtype: torch.dtype | None,
             device: torch.device) -> dict[str, torch.Tensor]:
        """``{target: model name}`` → tensors, each in its logical shape, dequantised into ``dtype`` (None: float32)
        on ``device``.

        Raises:
            CheckpointError: see :meth:`read_tensor`.
        """
        return {target: self.read_tensor(name, dtype=dtype, device=device) for target, name in names.items()}


def open_gemma_gguf(path: str | os.PathLike) -> GemmaGGUFTensors:
    """Validate a Gemma-3 GGUF (readable, complete, architecture ``gemma3``, known tensor names and types) and
    return its :class:`GemmaGGUFTensors` (tensor shapes and types from the header; no data read yet). Also builds
    and caches the tokenizer model (:func:`gguf_tokenizer_bytes`).

    Raises:
        CheckpointError: the file is not GGUF, truncated, of another architecture, or has unknown tensors or types.
    """
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


def gemma_hf_config_from_gguf(file: GGUFFile) -> dict[str, Any]:
    """A Hugging Face ``Gemma3TextConfig`` dict from the ``gemma3.*`` metadata (through
    ``gguf_loader.gemma3_config``), for ``GemmaConfig.from_hf_dict``.

    GGUF does not store ``query_pre_attn_scalar`` nor always the global RoPE scaling: for the known Gemma-3 widths
    they come from :data:`KNOWN_SIZES` (27B: 168; 4B/12B/27B: linear factor 8 when the file has no
    ``gemma3.rope.scaling.factor``), otherwise ``head_dim`` and no scaling.

    Raises:
        CheckpointError: a needed ``gemma3.*`` field is missing or malformed.
    """
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
        "sliding_window_pattern": file.metadata.get("gemma3.attention.sliding_window_pattern", 6),
    }
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if key in cfg:
            hf[key] = cfg[key]
    return hf


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
    """The serialised SentencePiece model of a Gemma-3 GGUF's vocabulary (cached per file version). Like
    ComfyUI-GGUF's ``loader.gguf_tokenizer_loader`` (which knows T5 vocabularies only).

    Raises:
        CheckpointError: the file is missing, not a Gemma-3 GGUF, or has no usable vocabulary.
    """
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
