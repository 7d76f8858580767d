"""RS-LTXV: LTX-2 / LTX-2.3 video with sound for ComfyUI and Python.

As a library: ``rs_ltxv.ltx`` (model port, loading), ``rs_ltxv.ops`` (attention backends).
As a ComfyUI custom node pack: ComfyUI imports this package from ``custom_nodes/<folder>``; the node mappings below
are filled only when ComfyUI is importable, so importing the library never needs ComfyUI.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_UNKNOWN_VERSION = "0+unknown"


def _project_version(pyproject: Path) -> str | None:
    """``[project] version`` of a pyproject.toml (a plain line read: tomllib is 3.11+), or None."""
    table = ""
    for line in pyproject.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            table = line.strip("[] ")
        elif table == "project" and line.partition("=")[0].strip() == "version":
            return line.partition("=")[2].strip().strip("\"'") or None
    return None


def _read_version() -> str:
    """The version written once, in pyproject.toml: read next to this file (a clone, as ComfyUI loads it, or an
    editable install), else from the installed distribution's metadata (a wheel); never raises."""
    try:
        pyproject = Path(__file__).with_name("pyproject.toml")
        if pyproject.is_file():
            return _project_version(pyproject) or _UNKNOWN_VERSION
        from importlib.metadata import version

        return version("rs-ltxv")
    except Exception:
        return _UNKNOWN_VERSION


__version__ = _read_version()

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}

if importlib.util.find_spec("comfy") is not None and importlib.util.find_spec("folder_paths") is not None:
    # ComfyUI is running us: register the node adapters (nodes/ imports ComfyUI only lazily, when nodes run).
    from .nodes import NODE_CLASS_MAPPINGS as _NODES
    from .nodes import NODE_DISPLAY_NAME_MAPPINGS as _NAMES

    NODE_CLASS_MAPPINGS.update(_NODES)
    NODE_DISPLAY_NAME_MAPPINGS.update(_NAMES)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "__version__"]
