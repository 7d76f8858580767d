"""ComfyUI adapters. Importing this package does not import ComfyUI: the node classes reach ComfyUI's services
(model folders, progress bar, interrupt, memory) lazily through :mod:`.comfy_env` when ComfyUI calls them.

``NODE_CLASS_MAPPINGS`` / ``NODE_DISPLAY_NAME_MAPPINGS`` are what the root ``__init__`` hands to ComfyUI.
"""

from __future__ import annotations

from functools import partial

from . import comfy_env, specs
from .loaders import RUNS as _LOADER_RUNS
from .ltxv_extend import run_extend
from .ltxv_generate import Hooks, run_generate
from .ltxv_retake import run_retake
from .multi_gpu import with_parallel
from .v1 import make_node


def _comfy_hooks() -> Hooks:
    progress, preview = comfy_env.progress_hooks()
    return Hooks(progress=progress, cancel=comfy_env.cancel_hook(), free=comfy_env.free_memory,
                 load=comfy_env.load_model, preview=preview, free_bytes=comfy_env.free_bytes)


def _with_comfy_hooks(run, **values):
    return run(_comfy_hooks(), **values)


RUNS = {
    **_LOADER_RUNS,
    specs.GENERATE.id: partial(_with_comfy_hooks, run_generate),
    specs.EXTEND.id: partial(_with_comfy_hooks, run_extend),
    specs.RETAKE.id: partial(_with_comfy_hooks, run_retake),
    specs.MULTI_GPU.id: with_parallel,
    specs.TEXT_ENCODE.id: lambda **values: _LOADER_RUNS[specs.TEXT_ENCODE.id](
        **values, cancel=comfy_env.cancel_hook()),
}

NODE_CLASS_MAPPINGS: dict[str, type] = {node_id: make_node(spec, RUNS[node_id])
                                        for node_id, spec in specs.NODES.items()}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {node_id: spec.display_name for node_id, spec in specs.NODES.items()}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
