"""A bounded pre-scan of a GGUF header, run before the ``gguf`` package's reader sees the file.

``gguf.GGUFReader`` trusts every count in the header: it loops over an array's element count creating one numpy
array per element (a count larger than the file turns a 0.7 MB file into gigabytes and minutes), decodes strings
strictly and reshapes tensor data without checking that it exists. :func:`scan_header` walks the same header with
``struct`` over a memory map, checking every count, length, type and offset against the bytes that are left and
against the limits below, so a malformed file fails in milliseconds with a :class:`GGUFError` that names the field.

Limits (far above every real LTX-2 / Gemma-3 file; llama.cpp's own reader has the same kinds of checks):

===================  ===========  =================================================================
MAX_TENSORS          65 536       LTX-2.3 22B: about 6 000 tensors; Gemma-3 12B: about 630
MAX_METADATA_KEYS    8 192        Gemma-3 files: about 40 keys
MAX_ARRAY_LENGTH     4 194 304    Gemma-3's vocabulary: 262 144 pieces
MAX_STRING_BYTES     8 MiB        a ``config`` JSON: about 10 KB
MAX_NAME_BYTES       65 535       a key or tensor name
MAX_DIMS             4            ``GGML_MAX_DIMS``
MAX_DIM              2³²          one dimension
===================  ===========  =================================================================
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from .errors import GGUFError

MAX_TENSORS = 65_536
MAX_METADATA_KEYS = 8_192
MAX_ARRAY_LENGTH = 1 << 22
MAX_STRING_BYTES = 8 << 20
MAX_NAME_BYTES = 65_535
MAX_DIMS = 4
MAX_DIM = 1 << 32
MAX_ALIGNMENT = 1 << 16
VERSIONS = (2, 3)
_MIN_KV_BYTES = 8 + 4 + 1  # empty key, type, one-byte value
_MIN_TENSOR_BYTES = 8 + 4 + 8 + 4 + 8  # empty name, n_dims, one dim, type, offset
_SCALARS = {GGUFValueType.UINT8: 1, GGUFValueType.INT8: 1, GGUFValueType.UINT16: 2, GGUFValueType.INT16: 2,
            GGUFValueType.UINT32: 4, GGUFValueType.INT32: 4, GGUFValueType.FLOAT32: 4, GGUFValueType.BOOL: 1,
            GGUFValueType.UINT64: 8, GGUFValueType.INT64: 8, GGUFValueType.FLOAT64: 8}
_FIX = "Download or convert the file again."
_U64 = struct.Struct("<Q")


class _Cursor:
    """Little-endian reads from a buffer; each checks that the bytes are there."""

    def __init__(self, buf: mmap.mmap, name: str) -> None:
        self.buf, self.name, self.pos, self.size = buf, name, 0, len(buf)

    def fail(self, text: str) -> GGUFError:
        return GGUFError(f"{self.name} is corrupt or not a GGUF file RS-LTXV reads: {text}. {_FIX}")

    def left(self) -> int:
        return self.size - self.pos

    def skip(self, n: int, what: str) -> int:
        if n > self.left():
            raise GGUFError(f"{self.name} is truncated or corrupt: {what} needs {n:,} bytes at byte {self.pos:,} but "
                            f"only {self.left():,} are left. Download the file again.")
        start, self.pos = self.pos, self.pos + n
        return start

    def u32(self, what: str) -> int:
        return struct.unpack_from("<I", self.buf, self.skip(4, what))[0]

    def u64(self, what: str) -> int:
        return struct.unpack_from("<Q", self.buf, self.skip(8, what))[0]

    def string(self, what: str, limit: int) -> str:
        n = self.u64(f"the length of {what}")
        if n > limit:
            raise self.fail(f"{what} claims {n:,} bytes (at most {limit:,} are accepted; {self.left():,} are left)")
        start = self.skip(n, what)
        try:
            return self.buf[start:start + n].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what} is not valid UTF-8 ({exc.reason} at byte {start + exc.start:,})") from None


    def count(self, n: int, each: int, limit: int, what: str) -> None:
        """Check a count of ``what`` (each at least ``each`` bytes) against ``limit`` and the bytes left."""
        if n > limit:
            raise self.fail(f"the header claims {n:,} {what} at byte {self.pos:,} (at most {limit:,} are accepted)")
        if n * each > self.left():
            raise GGUFError(f"{self.name} is truncated or corrupt: the header claims {n:,} {what} at byte "
                            f"{self.pos:,} (at least {n * each:,} bytes) but only {self.left():,} bytes are left. "
                            "Download the file again.")


def _value_type(c: _Cursor, raw: int, what: str) -> GGUFValueType:
    try:
        return GGUFValueType(raw)
    except ValueError:
        raise c.fail(f"{what} has unknown value type {raw}") from None


def _skip_value(c: _Cursor, vtype: GGUFValueType, what: str) -> int | None:
    """Walk one value; returns it when it is an unsigned 32-bit scalar (``general.alignment``), else None."""
    if vtype in _SCALARS:
        start = c.skip(_SCALARS[vtype], what)
        return struct.unpack_from("<I", c.buf, start)[0] if vtype is GGUFValueType.UINT32 else None
    if vtype is GGUFValueType.STRING:
        c.string(what, MAX_STRING_BYTES)
        return None
    itype = _value_type(c, c.u32(f"the element type of {what}"), f"{what} (array)")
    count = c.u64(f"the length of {what}")
    size = _SCALARS.get(itype, 8)  # a string element takes at least its 8-byte length
    c.count(count, size, MAX_ARRAY_LENGTH, f"{itype.name} elements in {what}")
    if itype in _SCALARS:
        c.skip(count * size, what)
    elif itype is GGUFValueType.STRING:
        _skip_strings(c, count, what)
    else:
        raise c.fail(f"{what} is an array of {itype.name}s; nested arrays are not supported")
    return None


def _skip_strings(c: _Cursor, count: int, what: str) -> None:
    """Walk ``count`` strings (a vocabulary: 262 144 for Gemma-3), each checked like :meth:`_Cursor.string`, in a
    tight loop."""
    buf, pos, size, unpack = c.buf, c.pos, c.size, _U64.unpack_from
    for i in range(count):
        n = unpack(buf, pos)[0] if pos + 8 <= size else -1
        if n < 0 or n > MAX_STRING_BYTES or pos + 8 + n > size:
            c.pos = pos
            c.string(f"{what}[{i}]", MAX_STRING_BYTES)  # raises with the message
        try:
            buf[pos + 8:pos + 8 + n].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise c.fail(f"{what}[{i}] is not valid UTF-8 ({exc.reason})") from None
        pos += 8 + n
    c.pos = pos


def _tensor_info(c: _Cursor, index: int, alignment: int) -> tuple[str, int, int]:
    """(name, offset, bytes) of tensor info ``index``."""
    name = c.string(f"the name of tensor #{index}", MAX_NAME_BYTES)
    n_dims = c.u32(f"the dimension count of tensor {name!r}")
    if not 1 <= n_dims <= MAX_DIMS:
        raise c.fail(f"tensor {name!r} has {n_dims} dimensions (GGUF tensors have 1 to {MAX_DIMS})")
    dims = [c.u64(f"the dimensions of tensor {name!r}") for _ in range(n_dims)]
    if max(dims) > MAX_DIM:
        raise c.fail(f"tensor {name!r} has a dimension of {max(dims):,} (at most {MAX_DIM:,} are accepted)")
    raw_type = c.u32(f"the type of tensor {name!r}")
    try:
        qtype = GGMLQuantizationType(raw_type)
        block, type_size = GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
        raise GGUFError(f"{c.name}: tensor {name!r} has GGML type {raw_type}, a GGML type this gguf package does not "
                        "know (written by a newer llama.cpp?). Use a file quantised to a common type (Q8_0, Q4_K, …)."
                        ) from None
    if dims[0] % block:
        raise c.fail(f"tensor {name!r} ({qtype.name}) has rows of {dims[0]} values, not a multiple of its block "
                     f"size {block}")
    offset = c.u64(f"the data offset of tensor {name!r}")
    if offset % alignment:
        raise c.fail(f"tensor {name!r} starts at data offset {offset:,}, not a multiple of the alignment {alignment}")
    elements = 1
    for d in dims:
        elements *= d
    return name, offset, elements // block * type_size


def _check_layout(c: _Cursor, tensors: list[tuple[str, int, int]], data_start: int) -> None:
    """Every tensor inside the file's data section, none overlapping another."""
    end = max((offset + size for _, offset, size in tensors), default=0)
    if data_start + end > c.size:
        total = data_start + end
        raise GGUFError(f"{c.name} is truncated: the header describes {total:,} bytes but the file has {c.size:,} "
                        f"({100 * c.size / total:.1f}%). The download or copy did not finish; download it again.")
    previous = ("", 0, 0)
    for entry in sorted(tensors, key=lambda t: (t[1], t[2])):
        if entry[1] < previous[1] + previous[2]:
            raise c.fail(f"the data of tensors {previous[0]!r} and {entry[0]!r} overlap (bytes {entry[1]:,} to "
                         f"{previous[1] + previous[2]:,} of the data section)")
        previous = entry


def scan_header(path: Path) -> int:
    """Validate the GGUF header of ``path`` (magic already checked) and return where its data section starts.

    Raises:
        GGUFError: a count or length larger than the bytes left or than the limits (module docstring), an unknown
            value or GGML type, invalid UTF-8, a duplicate key or tensor, a bad alignment, a tensor row that is not
            whole blocks, a tensor outside the file (truncation) or overlapping another, a big-endian file or an
            unsupported version. The message names the file and the field.
    """
    name = path.name
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        c = _Cursor(buf, name)
        c.skip(4, "the magic")
        version = c.u32("the version")
        if version & 0xFFFF == 0 and version:
            raise c.fail("it is a big-endian GGUF file, which RS-LTXV does not read; use a little-endian conversion")
        if version not in VERSIONS:
            raise c.fail(f"GGUF version {version} is not supported (versions {VERSIONS})")
        n_tensors, n_kv = c.u64("the tensor count"), c.u64("the metadata count")
        c.count(n_kv, _MIN_KV_BYTES, MAX_METADATA_KEYS, "metadata keys")
        c.count(n_tensors, _MIN_TENSOR_BYTES, MAX_TENSORS, "tensors")
        keys: set[str] = set()
        alignment = 32
        for i in range(n_kv):
            key = c.string(f"metadata key #{i}", MAX_NAME_BYTES)
            if key in keys:
                raise c.fail(f"metadata key {key!r} appears twice")
            keys.add(key)
            vtype = _value_type(c, c.u32(f"the type of {key!r}"), f"metadata {key!r}")
            value = _skip_value(c, vtype, f"metadata {key!r}")
            if key == "general.alignment":
                if value is None or not 0 < value <= MAX_ALIGNMENT or value & (value - 1):
                    raise c.fail(f"general.alignment must be a uint32 power of two up to {MAX_ALIGNMENT}; got "
                                 f"{vtype.name} {value}")
                alignment = value
        tensors = [_tensor_info(c, i, alignment) for i in range(n_tensors)]
        if len({t[0] for t in tensors}) != len(tensors):
            raise c.fail("a tensor name appears twice")
        data_start = c.pos + (-c.pos % alignment)
        _check_layout(c, tensors, data_start)
        return data_start
