"""RS-LTXV: LTX-2 / LTX-2.3 video with sound for ComfyUI and Python.

As a library: ``rs_ltxv.ltx`` (model port, loading), ``rs_ltxv.ops`` (attention backends).
As a ComfyUI custom node pack: ComfyUI imports this package from ``custom_nodes/<folder>``; the node mappings below
are filled only when ComfyUI is importable, so importing the library never needs ComfyUI.
"""

from __future__ import annotations

import importlib.util

__version__ = "0.1.0"

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}

if importlib.util.find_spec("comfy") is not None and importlib.util.find_spec("folder_paths") is not None:
    # ComfyUI is running us: register the node adapters (nodes/ imports ComfyUI only lazily, when nodes run).
    from .nodes import NODE_CLASS_MAPPINGS as _NODES
    from .nodes import NODE_DISPLAY_NAME_MAPPINGS as _NAMES

    NODE_CLASS_MAPPINGS.update(_NODES)
    NODE_DISPLAY_NAME_MAPPINGS.update(_NAMES)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "__version__"]
