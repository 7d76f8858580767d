"""Byte-level surgery on GGUF files for the parser fuzzer, written independently of ``gguf_loader``: a walker that
records where every count, length, type and offset field of the header lies, and rewrites that keep the file
otherwise valid (replace a string value, insert key/values) so that only the intended field is wrong."""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type → bytes
STRING, ARRAY = 8, 9


@dataclass(frozen=True)
class Field:
    """One integer field of the header: what it is (``kv_count``, ``array_count``, ``dim`` …), where, how wide."""

    what: str
    offset: int
    width: int


@dataclass(frozen=True)
class Layout:
    """The header of a GGUF file: its integer ``fields``, where each key's value starts and ends
    (``values``: key → (type offset, end)), where the tensor infos start, the header end and the data start."""

    fields: list[Field]
    values: dict[str, tuple[int, int]]
    tensor_infos: int
    header_end: int
    data_start: int
    alignment: int


def _u(data: bytes, at: int, width: int) -> int:
    return int.from_bytes(data[at:at + width], "little")


def _value(data: bytes, at: int, vtype: int, fields: list[Field], depth: int = 0) -> int:
    """Walk one value of ``vtype`` at ``at``; returns its end."""
    if vtype in _SCALAR:
        return at + _SCALAR[vtype]
    if vtype == STRING:
        fields.append(Field("string_length", at, 8))
        return at + 8 + _u(data, at, 8)
    if vtype == ARRAY and depth == 0:
        fields.append(Field("array_type", at, 4))
        fields.append(Field("array_count", at + 4, 8))
        itype, count, at = _u(data, at, 4), _u(data, at + 4, 8), at + 12
        if itype in _SCALAR:
            return at + count * _SCALAR[itype]
        inner: list[Field] = []
        for _ in range(count):
            at = _value(data, at, itype, inner, depth + 1)
        fields.extend(inner[:: max(1, len(inner) // 8)])  # a sample of the element lengths
        return at
    raise ValueError(f"value type {vtype}")


def walk(data: bytes) -> Layout:
    """The :class:`Layout` of a valid GGUF file (v3, little-endian).

    Raises:
        ValueError: the file is not one this walker understands.
    """
    if data[:4] != b"GGUF":
        raise ValueError("not GGUF")
    fields = [Field("version", 4, 4), Field("tensor_count", 8, 8), Field("kv_count", 16, 8)]
    n_tensors, n_kv, at = _u(data, 8, 8), _u(data, 16, 8), 24
    values: dict[str, tuple[int, int]] = {}
    alignment = 32
    for _ in range(n_kv):
        fields.append(Field("key_length", at, 8))
        key = data[at + 8:at + 8 + _u(data, at, 8)].decode()
        at += 8 + _u(data, at, 8)
        fields.append(Field("value_type", at, 4))
        start = at
        at = _value(data, at + 4, _u(data, at, 4), fields)
        values[key] = (start, at)
        if key == "general.alignment":
            fields.append(Field("alignment", start + 4, 4))
            alignment = _u(data, start + 4, 4)
    infos = at
    for _ in range(n_tensors):
        fields.append(Field("name_length", at, 8))
        at += 8 + _u(data, at, 8)
        fields.append(Field("n_dims", at, 4))
        n_dims, at = _u(data, at, 4), at + 4
        fields += [Field("dim", at + 8 * i, 8) for i in range(n_dims)]
        at += 8 * n_dims
        fields += [Field("tensor_type", at, 4), Field("tensor_offset", at + 4, 8)]
        at += 12
    return Layout(fields, values, infos, at, -(-at // alignment) * alignment, alignment)


def set_field(data: bytes, field: Field, value: int) -> bytes:
    """``data`` with ``field`` set to ``value`` (wrapped to its width)."""
    raw = (value % (1 << (8 * field.width))).to_bytes(field.width, "little")
    return data[:field.offset] + raw + data[field.offset + field.width:]


def _repad(layout: Layout, header: bytes, data: bytes) -> bytes:
    """A new header followed by the old data section, re-aligned (tensor offsets are relative to the data start)."""
    pad = -len(header) % layout.alignment
    return header + b"\0" * pad + data[layout.data_start:]


def replace_string(data: bytes, key: str, text: str) -> bytes:
    """The file with the string value of ``key`` replaced by ``text`` (the rest of the header shifted)."""
    layout = walk(data)
    start, end = layout.values[key]
    raw = text.encode("utf-8", "surrogatepass")
    value = struct.pack("<I", STRING) + struct.pack("<Q", len(raw)) + raw
    return _repad(layout, data[:start] + value + data[end:layout.header_end], data)


@functools.cache
def many_strings(count: int) -> bytes:
    """``count`` encoded string key/values ``k0 = "v"`` … (built once per count)."""
    return b"".join(struct.pack("<Q", len(k)) + k + struct.pack("<IQ", STRING, 1) + b"v"
                    for k in (f"k{i}".encode() for i in range(count)))


def insert_strings(data: bytes, count: int) -> bytes:
    """The file with ``count`` string key/values (:func:`many_strings`) added after the existing ones
    (``kv_count`` updated)."""
    layout = walk(data)
    header = data[:layout.tensor_infos] + many_strings(count) + data[layout.tensor_infos:layout.header_end]
    header = header[:16] + struct.pack("<Q", _u(data, 16, 8) + count) + header[24:]
    return _repad(layout, header, data)
