"""Seeded mutations of model files for the parser fuzzer.

``mutate(rng, data, fmt, config)`` returns ``(label, mutated bytes)``. Operators, picked at random per case:

* bytes (every format): flips in the header region, truncation at a random point, inserted or appended bytes;
* safetensors: the header-length field changed; JSON-level edits of the header (``dtype`` / ``shape`` /
  ``data_offsets`` replaced by wrong types, negative, huge, overlapping or reversed values; entries removed,
  renamed or replaced; ``__metadata__`` of the wrong type, non-string values, 10⁵ keys);
* GGUF: count, length, type and offset fields set to huge or off-by-one values (:mod:`.fuzz_gguf`), 10⁵ keys;
* the stored config (both formats): a field replaced by a huge number, a string, null, a list, a nesting bomb, an
  integer with 5000 digits; the whole config not JSON or not an object.
"""

from __future__ import annotations

import functools
import json
import random
from typing import Any

from . import fuzz_gguf

BOMB = "__FUZZ_BOMB__"
BIGINT = "__FUZZ_BIGINT__"
MANY = "__FUZZ_MANY__"
NUMBERS = [10**9, 1_000_000_000, 2**31, 2**63, 2**64 + 1, 10**30, 1e308, -1, 0, -(10**9), 1.5, float("nan"),
           float("inf"), 3, 7]
WRONG = ["abc", "", None, True, [], {}, [1, 2], {"a": 1}, "1e9", [[[]]], BOMB, BIGINT]
#: keys of size-like config fields; edits prefer them
SIZE_WORDS = ("layers", "channels", "dim", "heads", "num_", "size", "rate", "bins", "mult", "ch", "registers", "pos",
              "n_fft", "hop", "kernel", "resolution", "blocks")


@functools.cache
def _many_keys() -> str:
    """JSON text of 10⁵ metadata entries ``"k0": "v"`` … (built once)."""
    return ", ".join(f'"k{i}": "v"' for i in range(100_000))


def _text(value: Any) -> str:
    """JSON text of ``value`` with the sentinels expanded (a 10⁵-deep list; an integer of 5000 digits)."""
    text = json.dumps(value)
    return text.replace(f'"{BOMB}"', "[" * 100_000 + "]" * 100_000).replace(f'"{BIGINT}"', "9" * 5000)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _set(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    value = json.loads(json.dumps(value))
    node = value
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return value


def config_text(rng: random.Random, config: dict[str, Any]) -> tuple[str, str]:
    """A mutated config JSON text and what was changed."""
    roll = rng.random()
    if roll < 0.08:
        text = rng.choice(["{", "[]", "null", "5", '"x"', "[" * 100_000, _text(BOMB), "{\"a\": NaN}", BIGINT])
        return f"config = {text[:20]!r}", _text(text) if text == BIGINT else text
    paths = _paths(config)
    sized = [p for p in paths if isinstance(p[-1], str) and any(w in p[-1] for w in SIZE_WORDS)]
    path = rng.choice(sized if sized and roll < 0.6 else paths)
    new = rng.choice(NUMBERS if roll < 0.6 else NUMBERS + WRONG)
    return f"config{list(path)} = {str(new)[:20]}", _text(_set(config, path, new))


# ------------------------------------------------------------------------------------------------ bytes


def byte_mutation(rng: random.Random, data: bytes, header_end: int) -> tuple[str, bytes]:
    """Flips in the first ``header_end`` bytes, truncation, inserted or appended bytes."""
    roll = rng.random()
    if roll < 0.45:
        out = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(max(1, min(header_end, len(data))))
            out[at] ^= 1 << rng.randrange(8) if rng.random() < 0.5 else rng.randrange(1, 256)
        return "flip", bytes(out)
    if roll < 0.8:
        at = rng.randrange(len(data)) if rng.random() < 0.5 else rng.randrange(max(1, min(header_end, len(data))))
        return f"truncate@{at}", data[:at]
    if roll < 0.9:
        at = rng.randrange(max(1, min(header_end, len(data))))
        return f"insert@{at}", data[:at] + rng.randbytes(rng.randint(1, 16)) + data[at:]
    return "append", data + rng.randbytes(rng.randint(1, 64))


# ------------------------------------------------------------------------------------------------ safetensors


def st_split(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(header dict, data area) of a valid ``.safetensors`` file."""
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), data[8 + n:]


def st_join(header: str, body: bytes) -> bytes:
    """A ``.safetensors`` file from header text (padded to 8 bytes) and a data area."""
    raw = header.encode("utf-8", "surrogatepass")
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + body


def _entry_value(rng: random.Random, field: str, entry: dict[str, Any], other: dict[str, Any]) -> Any:
    begin, end = entry["data_offsets"]
    shape = entry["shape"]
    if field == "dtype":
        return rng.choice(["F99", "", 5, None, ["F32"], "f32", "U16", "F8_E8M0", "I64", "BOOL", "F64", "C64",
                           "I16", "F16", "BF16", "I32", "U8", "I8", "F8_E4M3"])  # the last: same-size swaps
    if field == "shape":
        return rng.choice([[-1], "3", None, [1.5], [True], [[1]], [2**64], [10**12, 10**12], [0], [], [1] * 40,
                           {"a": 1}, [*shape, 2], [2 * d for d in shape], [-d for d in shape], [BIGINT]])
    return rng.choice([[-8, end], [end, begin], list(other["data_offsets"]), [begin, end + 1], [begin, 2**64],
                       [begin], [begin, end, 0], "0", None, [1.5, 2.0], [begin, 10**30], [begin - 1, end - 1],
                       [0, end - begin], [begin + 10**9, end + 10**9], [-1, -1]])


def safetensors_mutation(rng: random.Random, data: bytes, config: dict[str, Any] | None) -> tuple[str, bytes]:
    """One safetensors-specific mutation (see the module docstring)."""
    header, body = st_split(data)
    n = int.from_bytes(data[:8], "little")
    names = [k for k in header if k != "__metadata__"]
    roll = rng.random()
    if config is None:  # no config to edit: those cases go to the other operators
        roll = 0.45 + 0.55 * roll if roll >= 0.12 else roll
    if roll < 0.12:
        value = rng.choice([0, 1, 7, n - 1, n + 1, n + 8, len(data) - 8, len(data), 2**63, 2**64 - 1, 100 * 2**20,
                            rng.randrange(2**32)])
        return f"header_length={value}", value.to_bytes(8, "little") + data[8:]
    if roll < 0.45 and config is not None:
        label, text = config_text(rng, config)
        header.setdefault("__metadata__", {})["config"] = BOMB
        return label, st_join(json.dumps(header).replace(f'"{BOMB}"', json.dumps(text)), body)
    if roll < 0.55:
        meta = header.setdefault("__metadata__", {})
        choice = rng.randrange(4)
        if choice == 0:
            meta[MANY] = ""
            return "100000 metadata keys", st_join(json.dumps(header).replace(f'"{MANY}": ""', _many_keys()), body)
        if choice == 1:
            header["__metadata__"] = rng.choice([[1], "x", 5, None, {"a": {"b": 1}}])
        elif choice == 2:
            meta[rng.choice([*meta, "config", "x"])] = rng.choice([5, None, [1], {"a": 1}, True, 1.5])
        else:
            header = rng.choice([[1], "x", 5, None, [header]])
        return "metadata/top-level type", st_join(_text(header), body)
    name = rng.choice(names)
    entry = header[name]
    roll = rng.random()
    if roll < 0.6:
        field = rng.choice(["dtype", "shape", "data_offsets", "data_offsets"])
        entry[field] = _entry_value(rng, field, entry, header[rng.choice(names)])
        return f"{field} of {name} = {str(entry[field])[:30]}", st_join(_text(header), body)
    if roll < 0.7:
        del entry[rng.choice(list(entry))]
        return f"key removed from {name}", st_join(json.dumps(header), body)
    if roll < 0.8:
        header[name] = rng.choice([[1], "x", None, 5, BOMB])
        return f"entry {name} replaced", st_join(_text(header), body)
    if roll < 0.9:
        del header[name]
        return f"tensor {name} removed", st_join(json.dumps(header), body)
    new = rng.choice([name + "x", "transformer_blocks.1000000000.attn1.to_q.weight", name.replace(".0.", ".99999.")])
    header[new] = header.pop(name)
    return f"tensor {name} renamed {new}", st_join(json.dumps(header), body)


# ------------------------------------------------------------------------------------------------ GGUF


def gguf_mutation(rng: random.Random, data: bytes, config: dict[str, Any] | None) -> tuple[str, bytes]:
    """One GGUF-specific mutation (see the module docstring)."""
    layout = fuzz_gguf.walk(data)
    roll = rng.random()
    if roll < 0.3 and config is not None:
        label, text = config_text(rng, config)
        return label, fuzz_gguf.replace_string(data, "config", text)
    if roll < 0.33:
        return "100000 metadata keys", fuzz_gguf.insert_strings(data, 100_000)
    field = rng.choice(layout.fields)
    old = int.from_bytes(data[field.offset:field.offset + field.width], "little")
    left = len(data) - field.offset
    top = (1 << (8 * field.width)) - 1
    value = rng.choice([top, top // 2 + 1, 2**32 + 1, 10**9, left + 1, left // 2, old + 1, old - 1, old * 2, 0,
                        99, 12, 8, 9, 31])
    return f"{field.what}@{field.offset}={value}", fuzz_gguf.set_field(data, field, value)


def mutate(rng: random.Random, data: bytes, fmt: str, config: dict[str, Any] | None) -> tuple[str, bytes]:
    """A seeded mutation of ``data`` (a valid file of format ``fmt``: ``safetensors``, ``gguf`` or ``bytes``)."""
    if fmt == "safetensors":
        header_end = 8 + int.from_bytes(data[:8], "little")
    elif fmt == "gguf":
        header_end = fuzz_gguf.walk(data).header_end
    else:
        header_end = len(data)
    if fmt == "bytes" or rng.random() < 0.35:
        return byte_mutation(rng, data, header_end)
    if fmt == "safetensors":
        return safetensors_mutation(rng, data, config)
    return gguf_mutation(rng, data, config)
