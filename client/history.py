"""Reading a finished prompt's ``/history/{id}`` entry: status, error or interruption, output files.

An entry looks like ``{"prompt": [...], "outputs": {node_id: {"images": [{"filename", "subfolder", "type"}],
"animated": [true]}}, "status": {"status_str": "success" | "error", "completed": bool, "messages": [[event,
data], ...]}}``. SaveVideo and SaveAnimatedWEBP report their files under ``images`` (with ``animated``), SaveAudio
under ``audio``, others under ``gifs`` / ``videos`` / ``files``: every list entry with a ``filename`` is a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import ClientError


@dataclass
class Outcome:
    """How a prompt ended, read from its history entry (:func:`outcome`): ``status`` and, for an error, the failing
    node and ComfyUI's ``execution_error`` fields (``exception_type``, ``exception_message``, ``traceback``)."""

    status: str  # "success" | "error" | "interrupted"
    node_id: str | None = None
    node_type: str | None = None
    exception_type: str = ""
    exception_message: str = ""
    traceback: list[str] = field(default_factory=list)


def outcome(entry: dict[str, Any]) -> Outcome:
    """The :class:`Outcome` of a ``/history/{id}`` entry: the first ``execution_error`` or ``execution_interrupted``
    message, else success when ComfyUI says so, else an error without a message."""
    status = entry.get("status") or {}
    messages = status.get("messages") or []
    for event, data in messages:
        if event == "execution_error":
            return Outcome("error", str(data.get("node_id")), data.get("node_type"), data.get("exception_type", ""),
                           data.get("exception_message", ""), list(data.get("traceback") or []))
        if event == "execution_interrupted":
            return Outcome("interrupted", str(data.get("node_id")), data.get("node_type"))
    if status.get("status_str") == "success" or status.get("completed"):
        return Outcome("success")
    return Outcome("error", exception_message=f"status {status.get('status_str')!r} without an error message")


def output_files(entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(node id, file ref) for every file the prompt's output nodes report, in node order."""
    files = []
    for node_id, outputs in (entry.get("outputs") or {}).items():
        for value in outputs.values():
            if not isinstance(value, list):
                continue
            for item in value:
                if isinstance(item, dict) and isinstance(item.get("filename"), str):
                    files.append((str(node_id), item))
    return files


def local_path(root: Path, file: dict[str, Any]) -> Path:
    """Where a server file lands: ``root/subfolder/filename`` for outputs, ``root/<type>/subfolder/filename``
    for temp / input files.

    Raises:
        ClientError: a name or subfolder that would leave ``root`` (``..``, absolute, a drive letter).
    """
    name, subfolder, kind = file["filename"], file.get("subfolder") or "", file.get("type") or "output"
    parts = [] if kind == "output" else [kind]
    parts += [p for p in PurePosixPath(subfolder.replace("\\", "/")).parts]
    for part in [*parts, name]:
        if part in ("", ".", "..") or "/" in part or "\\" in part or part.startswith("/") or ":" in part:
            raise ClientError(f"refusing to save a server file outside {root}: {subfolder!r}/{name!r}")
    return root.joinpath(*parts, name)


def format_error(o: Outcome, describe) -> str:
    """The lines printed for a failed or interrupted run; ``describe(node_id)`` names a node."""
    if o.status == "interrupted":
        return f"interrupted at node {describe(o.node_id)}" if o.node_id else "interrupted"
    where = f"node {describe(o.node_id)}" if o.node_id else "the prompt"
    kind = f"{o.exception_type}: " if o.exception_type else ""
    return f"{where} failed: {kind}{o.exception_message.strip()}"
