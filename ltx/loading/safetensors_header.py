"""Validation of a ``.safetensors`` header: everything the Rust ``safetensors`` reader will insist on when a tensor
is read, checked once when the file is opened, so ``info`` never accepts a table that loading then refuses with a
raw ``SafetensorError``, and nothing malformed can make the parser slow or large.

The format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data area. The JSON is an
object; ``__metadata__`` (optional) maps strings to strings; every other entry is a tensor
``{"dtype": str, "shape": [int, ...], "data_offsets": [begin, end]}`` with offsets relative to the data area. As
``safetensors`` requires: ``end - begin`` = elements × item size, and the tensors, sorted by offset, tile the data area
exactly (no overlap, no gap, nothing after the last one).

Limits (the official LTX-2.3 22B file: about 6 000 tensors and a header under 1 MiB; ``safetensors`` itself accepts
headers up to 100 MB):

=======================  =========  ================================================================
MAX_HEADER_BYTES         8 MiB      header JSON size
MAX_CONTAINERS           327 680    ``{`` + ``[`` in the header text, counted before parsing (bounds the parse's
                                    memory: an 8 MiB header of empty lists would take ~200 MB and 2 s)
MAX_TENSORS              65 536     tensor entries (as ``gguf_loader.header``)
MAX_METADATA_KEYS        8 192      ``__metadata__`` keys (as ``gguf_loader.header``)
MAX_RANK / MAX_DIM       8 / 2⁴⁸    dimensions per tensor / size of one dimension
=======================  =========  ================================================================
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from safetensors import SafetensorError

from ...gguf_loader.header import MAX_METADATA_KEYS, MAX_TENSORS
from ..errors import CheckpointError
from .source import DTYPES, TensorInfo

MAX_HEADER_BYTES = 8 << 20
MAX_CONTAINERS = 5 * MAX_TENSORS
MAX_RANK = 8
MAX_DIM = 1 << 48
#: bytes per element of each readable dtype (:data:`~.source.DTYPES`)
ITEM_SIZES = {name: dtype.itemsize for name, dtype in DTYPES.items()}
_FIX = "The file is corrupt or not a .safetensors file; download it again."


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; ValueError when a key appears twice (Python keeps the last, Rust refuses)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        keys = [k for k, _ in pairs]
        twice = next(k for i, k in enumerate(keys) if k in keys[:i])
        raise ValueError(f"the key {twice[:80]!r} appears twice")
    return out


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"), which the Rust reader refuses
        return False
    return True


def load_header_json(name: str, raw: bytes) -> dict[str, Any]:
    """The header object of ``raw`` (the N header bytes): size, container count, UTF-8, JSON syntax, nesting and
    duplicate keys checked.

    Raises:
        CheckpointError: any of those is wrong; the message names the file.
    """
    if len(raw) > MAX_HEADER_BYTES:
        raise CheckpointError(f"{name}: the .safetensors header is {len(raw):,} bytes; RS-LTXV reads headers up to "
                              f"{MAX_HEADER_BYTES:,} bytes (real model files: under 1 MiB). {_FIX}")
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > MAX_CONTAINERS:
        raise CheckpointError(f"{name}: the .safetensors header holds {containers:,} JSON objects/lists (at most "
                              f"{MAX_CONTAINERS:,} are accepted). {_FIX}")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{name} has a corrupt .safetensors header: not UTF-8 ({exc.reason} at byte "
                              f"{8 + exc.start}). {_FIX}") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, duplicate keys, 4300+ digit integers, nesting
        raise CheckpointError(f"{name} has a corrupt .safetensors header ({str(exc)[:200]}). {_FIX}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: the .safetensors header is a JSON {type(header).__name__}, not an object. "
                              f"{_FIX}")
    return header


def check_metadata(name: str, metadata: Any) -> dict[str, str]:
    """``__metadata__`` checked: absent/null or an object of at most :data:`MAX_METADATA_KEYS` string values.

    Raises:
        CheckpointError: it is not.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{name}: __metadata__ is a JSON {type(metadata).__name__}, not an object of strings. "
                              f"{_FIX}")
    if len(metadata) > MAX_METADATA_KEYS:
        raise CheckpointError(f"{name}: __metadata__ has {len(metadata):,} keys (at most {MAX_METADATA_KEYS:,} are "
                              f"accepted). {_FIX}")
    for key, value in metadata.items():
        if not isinstance(value, str) or not _utf8(value) or not _utf8(key):
            raise CheckpointError(f"{name}: __metadata__[{key[:60]!r}] is a {type(value).__name__}, not a UTF-8 "
                                  f"string (safetensors metadata values are strings). {_FIX}")
    return metadata


def check_entry(name: str, key: str, entry: Any) -> tuple[TensorInfo, int, int]:
    """One tensor entry checked: (its :class:`TensorInfo`, begin, end).

    Raises:
        CheckpointError: the entry is not an object, or its ``dtype`` is not readable, its ``shape`` not a list of
            at most :data:`MAX_RANK` integers in [0, :data:`MAX_DIM`], its ``data_offsets`` not two integers with
            ``0 <= begin <= end`` and ``end - begin`` = elements × item size.
    """
    if type(entry) is not dict or not (key.isascii() or _utf8(key)):
        raise _entry_error(name, key, f"is a JSON {type(entry).__name__}, not a tensor entry {{dtype, shape, "
                                      "data_offsets}")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    size = ITEM_SIZES.get(dtype) if type(dtype) is str else None
    if size is None:
        raise _entry_error(name, key, f"has dtype {str(dtype)[:40]!r}; RS-LTXV reads {', '.join(ITEM_SIZES)}")
    numel = 1
    if type(shape) is list and len(shape) <= MAX_RANK:
        for d in shape:  # type(d) is int: a bool is not a dimension
            if type(d) is not int or not 0 <= d <= MAX_DIM:
                break
            numel *= d
        else:
            shape = tuple(shape)
    if type(shape) is not tuple:
        raise _entry_error(name, key, f"has shape {str(shape)[:60]}; a shape is a list of at most {MAX_RANK} "
                                      f"integers from 0 to {MAX_DIM:,}")
    if type(offsets) is not list or len(offsets) != 2 or type(offsets[0]) is not int or (
            type(offsets[1]) is not int) or not 0 <= offsets[0] <= offsets[1]:
        raise _entry_error(name, key, f"has data_offsets {str(offsets)[:60]}; they must be two integers "
                                      "0 <= begin <= end")
    begin, end = offsets
    if numel * size != end - begin:
        raise _entry_error(name, key, f"has shape {list(shape)} × {dtype} ({size} bytes) = {numel * size:,} bytes "
                                      f"but data_offsets [{begin}, {end}] span {end - begin:,}")
    return TensorInfo(dtype, shape, end - begin), begin, end


def _entry_error(name: str, key: str, text: str) -> CheckpointError:
    return CheckpointError(f"{name}: tensor {key[:120]!r} {text}. {_FIX}")


def check_layout(name: str, spans: dict[str, tuple[int, int]], data_size: int, file_size: int) -> None:
    """The tensors' ``(begin, end)`` spans tile the ``data_size``-byte data area exactly.

    Raises:
        CheckpointError: a span ends past the file (truncated: the message gives the bytes missing and the
            percentage present, rounded down), two spans overlap, a gap lies between them, or bytes follow the last
            one.
    """
    end = max((e for _, e in spans.values()), default=0)
    if end > data_size:
        expected = file_size - data_size + end
        missing = expected - file_size
        present = math.floor(1000 * file_size / expected) / 10  # rounded down: a few bytes short never reads 100.0%
        raise CheckpointError(
            f"{name} is truncated: the header describes {expected:,} bytes but the file has {file_size:,} "
            f"({missing:,} byte{'s' if missing != 1 else ''} missing, {present:.1f}% present). The download or copy "
            "did not finish; download it again.")
    at, previous = 0, "the start of the data"
    for key, (begin, stop) in sorted(spans.items(), key=lambda kv: kv[1]):
        if begin != at:
            what = "overlaps" if begin < at else f"leaves a gap of {begin - at:,} bytes after"
            raise CheckpointError(f"{name}: the data of tensor {key[:120]!r} (data_offsets [{begin}, {stop}]) "
                                  f"{what} {previous} (which ends at {at:,}). {_FIX}")
        at, previous = stop, f"tensor {key[:120]!r}"
    if at != data_size:
        raise CheckpointError(f"{name}: {data_size - at:,} bytes follow the last tensor's data; the tensors must "
                              f"fill the file exactly. {_FIX}")


def parse_header(name: str, raw: bytes, data_size: int, file_size: int) -> tuple[dict[str, str],
                                                                                dict[str, TensorInfo]]:
    """(metadata, tensors) of a header whose data area is ``data_size`` bytes in a ``file_size``-byte file.

    Raises:
        CheckpointError: see :func:`load_header_json`, :func:`check_metadata`, :func:`check_entry`,
            :func:`check_layout`; more than :data:`MAX_TENSORS` tensors.
    """
    header = load_header_json(name, raw)
    metadata = check_metadata(name, header.pop("__metadata__", None))
    if len(header) > MAX_TENSORS:
        raise CheckpointError(f"{name}: the header lists {len(header):,} tensors (at most {MAX_TENSORS:,} are "
                              f"accepted). {_FIX}")
    tensors: dict[str, TensorInfo] = {}
    spans: dict[str, tuple[int, int]] = {}
    for key, entry in header.items():
        tensors[key], begin, end = check_entry(name, key, entry)
        spans[key] = (begin, end)
    check_layout(name, spans, data_size, file_size)
    return metadata, tensors


@contextmanager
def reading(name: str) -> Iterator[None]:
    """The boundary around the Rust reader (``safe_open`` / ``get_tensor``): a file that passed
    :func:`parse_header` can still change on disk or fail to read, and that becomes a :class:`CheckpointError`.

    Raises:
        CheckpointError: ``safetensors`` or the operating system could not read ``name``.
    """
    try:
        yield
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{name} could not be read ({type(exc).__name__}: {str(exc)[:200]}). The file may "
                              "have changed on disk or be corrupt; check it or download it again.") from exc
