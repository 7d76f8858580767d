"""A checked, memory-mapped view of a GGUF file: every metadata field, the architecture, the ``config`` JSON when
present, and tensor names, logical shapes (torch order) and GGML types.

GGUF stores dimensions innermost first (``ne``), so a torch ``(out, in)`` weight appears as ``[in, out]``; shapes here
are reversed back. ComfyUI-GGUF files may carry ``comfy.gguf.orig_shape.<name>`` (INT32 array, torch order) for
tensors whose shape was flattened when written; that shape wins when present (as in ComfyUI-GGUF's
``loader.get_orig_shape``).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFValueType

from .dequant import PLAIN_FLOAT, check_supported, dequantize, type_name
from .errors import GGUFError
from .header import MAX_DIM, scan_header

ORIG_SHAPE_PREFIX = "comfy.gguf.orig_shape."
STORED_DTYPES = {**PLAIN_FLOAT, GGMLQuantizationType.BF16: torch.bfloat16}
_MAGIC = b"GGUF"


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor: logical shape in torch order, GGML type, stored bytes and absolute data offset in the file."""

    name: str
    qtype: GGMLQuantizationType
    shape: tuple[int, ...]
    nbytes: int
    offset: int

    @property
    def type_name(self) -> str:
        """The GGML type's name ("Q4_K", "F16" …)."""
        return self.qtype.name

    @property
    def numel(self) -> int:
        """Number of logical values (the product of ``shape``)."""
        n = 1
        for d in self.shape:
            n *= d
        return n


def _field_value(field: Any) -> Any:
    """A Python value for a reader field: scalars, strings, and lists (of scalars or strings)."""
    if not field.types:
        return None
    if field.types[0] == GGUFValueType.ARRAY and not field.data:
        return []
    return field.contents()  # arrays: a list (of str, int, float or bool)


class GGUFFile:
    """Header, metadata and tensor table of one GGUF file, validated before any tensor data is touched.

    ``metadata``: every key/value field (``GGUF.*`` header fields excluded); ``architecture``: the
    ``general.architecture`` string or None; ``tensors``: name → :class:`GGUFTensor` in file order; ``reader``: the
    underlying ``gguf.GGUFReader`` (its pure-Python parse of a 262k-token vocabulary is the slow part of opening a
    Gemma file — 26–30 s measured on a busy shared 2-core machine — so it is parsed once and shared).

    Wraps ``gguf.GGUFReader`` (as ComfyUI-GGUF's ``loader.gguf_sd_loader`` does) with the checks below.

    Raises:
        GGUFError: ``path`` is a folder or missing, not GGUF (wrong magic), has a corrupt or truncated header (every
            count, length, type and offset is checked first by :func:`~.header.scan_header`), a GGML type the
            ``gguf`` package does not know, or a ``comfy.gguf.orig_shape.*`` that does not fit.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise GGUFError(f"{self.path} is a folder, not a .gguf file. Give the model file's path.")
        if not self.path.is_file():
            raise GGUFError(f"GGUF file not found: {self.path}")
        self.size = self.path.stat().st_size
        with open(self.path, "rb") as fh:
            magic = fh.read(4)
        if magic != _MAGIC:
            raise GGUFError(f"{self.path.name} is not a GGUF file (it starts with {magic!r}, not b'GGUF'). "
                            "Check the file; a .safetensors file must not be renamed to .gguf.")
        scan_header(self.path)  # every count and offset checked before GGUFReader allocates anything
        try:
            self.reader = GGUFReader(self.path, "r")
        except ValueError as exc:
            raise GGUFError(self._why_unreadable(exc)) from exc
        except (IndexError, OverflowError, KeyError, UnicodeDecodeError) as exc:
            raise GGUFError(f"{self.path.name} has a corrupt or truncated GGUF header ({exc}). "
                            "Download the file again.") from exc
        self.metadata: dict[str, Any] = {
            k: _field_value(f) for k, f in self.reader.fields.items() if not k.startswith("GGUF.")}
        self.version = int(self.reader.fields["GGUF.version"].contents())
        self.architecture: str | None = self.metadata.get("general.architecture")
        self.tensors: dict[str, GGUFTensor] = {}
        self._data: dict[str, np.ndarray] = {}
        for t in self.reader.tensors:
            shape = tuple(int(d) for d in reversed(t.shape.tolist()))
            orig = self.metadata.get(ORIG_SHAPE_PREFIX + t.name)
            if orig is not None:
                shape = self._orig_shape(t.name, orig, shape, t.tensor_type)
            self.tensors[t.name] = GGUFTensor(t.name, t.tensor_type, shape, int(t.n_bytes), int(t.data_offset))
            self._data[t.name] = t.data

    def _orig_shape(self, name: str, orig: Any, stored: tuple[int, ...], qtype: GGMLQuantizationType,
                    ) -> tuple[int, ...]:
        """``comfy.gguf.orig_shape.<name>`` checked: 1 to 8 integer dimensions with the stored tensor's element
        count, and (for block types) rows of whole blocks.

        Raises:
            GGUFError: it is not such a shape.
        """
        key = ORIG_SHAPE_PREFIX + name
        ok = isinstance(orig, list) and 0 < len(orig) <= 8 and all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_DIM for d in orig)
        if not ok:
            raise GGUFError(f"{self.path.name}: {key} must be a list of 1 to 8 non-negative integers; got "
                            f"{str(orig)[:80]}. The file is corrupt; convert it again.")
        shape = tuple(orig)
        numel = math.prod(stored)
        if math.prod(shape) != numel or shape[-1] % GGML_QUANT_SIZES[qtype][0]:
            raise GGUFError(f"{self.path.name}: {key} = {shape} does not have the {numel} elements of the stored "
                            f"{qtype.name} tensor {stored} in whole blocks. The file is corrupt; convert it again.")
        return shape

    def _why_unreadable(self, exc: Exception) -> str:
        text = str(exc)
        if "GGMLQuantizationType" in text:
            return (f"{self.path.name} holds a tensor of a GGML type this gguf package does not know ({text}). "
                    "It was written by a newer llama.cpp; use a file quantised to a common type (Q8_0, Q4_K, …).")
        if "reshape" in text or "out of bounds" in text or "mmap" in text or "cannot" in text:
            return (f"{self.path.name} is truncated: its header describes more data than the file's "
                    f"{self.size:,} bytes ({text}). The download or copy did not finish; download it again.")
        return f"{self.path.name} cannot be read as GGUF ({text}). The file is corrupt or truncated."

    # ----------------------------------------------------------------------------------------------- metadata

    def config(self) -> dict[str, Any] | None:
        """The ``config`` metadata string parsed as JSON, or None when the file has none.

        Raises:
            GGUFError: the ``config`` metadata is not valid JSON.
        """
        raw = self.metadata.get("config")
        if raw is None:
            return None
        try:
            if not isinstance(raw, str):
                raise TypeError(f"a {type(raw).__name__}, not a string")
            return json.loads(raw)
        except (TypeError, ValueError, RecursionError) as exc:  # ValueError: bad JSON, an integer too long
            raise GGUFError(f"{self.path.name}: the 'config' metadata is not valid JSON ({str(exc)[:200]}).") from exc

    def require_architecture(self, *accepted: str, what: str, allow_missing: bool = True) -> None:
        """Check ``general.architecture`` against ``accepted`` (``what`` names the expected model for the message);
        a missing architecture passes when ``allow_missing``.

        Raises:
            GGUFError: the architecture is another one (or missing, without ``allow_missing``).
        """
        arch = self.architecture
        if arch is None and allow_missing:
            return
        if arch not in accepted:
            raise GGUFError(f"{self.path.name} is a GGUF of architecture '{arch}', not {what} "
                            f"(expected {' or '.join(repr(a) for a in accepted)}). Load it with the matching loader.")

    def type_counts(self) -> dict[str, int]:
        """GGML type name → number of tensors of that type."""
        counts: dict[str, int] = {}
        for t in self.tensors.values():
            counts[t.type_name] = counts.get(t.type_name, 0) + 1
        return counts

    # ----------------------------------------------------------------------------------------------- tensors

    def raw(self, name: str, device: torch.device | str = "cpu") -> torch.Tensor:
        """The stored bytes of ``name`` as a uint8 tensor of shape ``byte_shape(qtype, shape)``, i.e.
        ``(*shape[:-1], row_bytes)`` (a view of the memory map on CPU).

        Raises:
            GGUFError: the tensor's data is shorter than the header says (truncated file).
        """
        info = self.tensors[name]
        array = self._data[name].view(np.uint8)
        if array.size != info.nbytes:
            raise GGUFError(f"{self.path.name}: tensor {name} has {array.size} bytes, {info.nbytes} expected; the "
                            "file is truncated or corrupt.")
        with warnings.catch_warnings():  # the memory map is read-only; we never write into it
            warnings.simplefilter("ignore", UserWarning)
            tensor = torch.from_numpy(array)
        if info.shape:
            block, size = GGML_QUANT_SIZES[info.qtype]
            tensor = tensor.reshape(*info.shape[:-1], info.shape[-1] // block * size)
        device = torch.device(device)
        return tensor if device.type == "cpu" else tensor.to(device)

    def tensor(self, name: str, dtype: torch.dtype | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        """``name`` in its logical torch-order shape, dequantised on ``device`` into ``dtype`` (None: F32/F16/BF16
        keep their dtype, quantised types become float32). Like ComfyUI-GGUF's ``dequant.dequantize_tensor``.

        Raises:
            UnsupportedQuantError: the tensor's type has no dequantiser here.
            GGUFError: the data is truncated.
        """
        info = self.tensors[name]
        check_supported(info.qtype, f"{self.path.name}: tensor {name}")
        raw = self.raw(name, device)
        stored = STORED_DTYPES.get(info.qtype)
        if stored is not None:  # F32 / F16 / BF16: reinterpret the bytes, no copy
            out = raw.contiguous().view(stored).reshape(info.shape)
            return out if dtype is None or dtype == stored else out.to(dtype)
        return dequantize(raw, info.qtype, info.shape, dtype or torch.float32)

    def check_data(self) -> None:
        """Check that the tensor data ends within the file (cheap: header arithmetic only).

        Raises:
            GGUFError: the file is truncated (the message gives the percentage present).
        """
        end = max((t.offset + t.nbytes for t in self.tensors.values()), default=0)
        if end > self.size:
            raise GGUFError(f"{self.path.name} is truncated: the header describes {end:,} bytes but the file has "
                            f"{self.size:,} ({100 * self.size / end:.1f}%). The download or copy did not finish; "
                            "download it again.")

    def describe_types(self) -> str:
        """``"F32×12, Q4_K×300"``: :meth:`type_counts` as one line."""
        return ", ".join(f"{k}×{v}" for k, v in sorted(self.type_counts().items()))


__all__ = ["ORIG_SHAPE_PREFIX", "GGUFFile", "GGUFTensor", "type_name"]
