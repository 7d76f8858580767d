"""A JSON-able description of any GGUF file: architecture, every metadata field (long arrays summarised), and the
tensors per GGML type with element counts and bytes."""

from __future__ import annotations

import os
from typing import Any

from .reader import GGUFFile

_SHOWN_ITEMS = 8  # arrays longer than this (tokenizer vocabularies) are summarised


def _summary(value: Any) -> Any:
    if isinstance(value, list) and len(value) > _SHOWN_ITEMS:
        return {"array_length": len(value), "first": value[:_SHOWN_ITEMS]}
    return value


def describe_gguf(path: str | os.PathLike, file: GGUFFile | None = None) -> dict[str, Any]:
    """``{file, size_bytes, gguf_version, architecture, metadata, tensor_count, parameters, types, has_config}``;
    ``types`` maps a GGML type name to ``{tensors, parameters, bytes}``. Like the ``gguf`` package's
    ``gguf-dump`` script (``gguf.scripts.gguf_dump``), as data.

    Raises:
        GGUFError: ``path`` is not a readable GGUF (only when ``file`` is not given).
    """
    file = file or GGUFFile(path)
    types: dict[str, dict[str, int]] = {}
    for t in file.tensors.values():
        entry = types.setdefault(t.type_name, {"tensors": 0, "parameters": 0, "bytes": 0})
        entry["tensors"] += 1
        entry["parameters"] += t.numel
        entry["bytes"] += t.nbytes
    return {
        "file": str(file.path),
        "size_bytes": file.size,
        "gguf_version": file.version,
        "architecture": file.architecture,
        "metadata": {k: ("<JSON, see 'config'>" if k == "config" else _summary(v)) for k, v in file.metadata.items()},
        "tensor_count": len(file.tensors),
        "parameters": sum(t.numel for t in file.tensors.values()),
        "types": dict(sorted(types.items())),
        "has_config": file.metadata.get("config") is not None,
    }


def format_gguf(d: dict[str, Any]) -> str:
    """Human-readable text of :func:`describe_gguf`."""
    lines = [
        f"file:          {d['file']} ({d['size_bytes'] / 2**20:.1f} MiB, GGUF v{d['gguf_version']})",
        f"architecture:  {d['architecture'] or '(none: compatibility mode, detected from tensor names)'}",
        f"tensors:       {d['tensor_count']:,} ({d['parameters']:,} values)",
        "quant types:",
    ]
    for name, t in d["types"].items():
        bits = 8 * t["bytes"] / max(t["parameters"], 1)
        lines.append(f"  {name:<8} {t['tensors']:>6} tensors  {t['parameters']:>16,} values  "
                     f"{t['bytes'] / 2**20:>10.2f} MiB  {bits:5.2f} bits/value")
    lines.append("metadata:")
    for key, value in d["metadata"].items():
        text = repr(value) if not isinstance(value, str) else value
        lines.append(f"  {key:<40} {text if len(text) <= 100 else text[:97] + '...'}")
    return "\n".join(lines)
