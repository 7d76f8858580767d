"""What ``python -m rs_ltxv info FILE.gguf`` reports: the GGUF view (architecture, metadata, quant types and
sizes) and, for LTX-2 files, the same version/config/component summary as for ``.safetensors`` (with a note when
the architecture string is another tool's, e.g. ``'pig'``, and the file loads by its tensor names)."""

from __future__ import annotations

import os
from typing import Any

from ...gguf_loader import GGUFError, GGUFFile
from ...gguf_loader.describe import describe_gguf, format_gguf
from ...gguf_loader.names import LTX_ARCHITECTURES
from ..errors import CheckpointError
from . import info
from .gguf_checkpoint import COMPAT_ARCHITECTURES, architecture_note, looks_ltx


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """:func:`describe_gguf` plus ``ltx`` (the ``.safetensors`` description) when the file is an LTX-2 model.

    Raises:
        CheckpointError: the file is missing, not GGUF or truncated; for an LTX-2 file, see
            :func:`~.info.describe`.
    """
    try:
        file = GGUFFile(path)
        file.check_data()
        d = describe_gguf(path, file)
    except GGUFError as exc:
        raise CheckpointError(str(exc)) from exc
    ltx = file.architecture in (*LTX_ARCHITECTURES, *COMPAT_ARCHITECTURES, None) and (
        file.architecture in (*LTX_ARCHITECTURES, None) or looks_ltx(file))
    d["ltx"] = info.describe(path) if ltx else None
    d["note"] = architecture_note(file) if ltx else None
    return d


def format_description(d: dict[str, Any]) -> str:
    """Human-readable text of :func:`describe`: :func:`format_gguf`, then the LTX summary indented."""
    text = format_gguf(d)
    if d.get("note"):
        text += f"\nnote:          {d['note']}"
    if d.get("ltx"):
        text += "\nLTX model:\n" + "\n".join("  " + line for line in info.format_description(d["ltx"]).splitlines())
    return text
