"""The package imports cleanly as a library and under ComfyUI, and never pulls in ComfyUI, torchaudio or
torchvision by itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHECK = ("import sys, rs_ltxv, rs_ltxv.ltx.loading, rs_ltxv.ltx.pipeline.stage, rs_ltxv.ops; "
         "bad = [m for m in ('torchaudio', 'torchvision', 'comfy', 'folder_paths') if m in sys.modules]; "
         "print(type(rs_ltxv.NODE_CLASS_MAPPINGS).__name__, bad)")


def _run(extra_path: str | None = None) -> str:
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = extra_path + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, check=True)
    return proc.stdout.strip()


def test_imports_without_comfyui():
    assert _run() == "dict []"


def test_imports_when_comfyui_is_importable(tmp_path):
    (tmp_path / "comfy").mkdir()
    (tmp_path / "comfy" / "__init__.py").write_text("")
    (tmp_path / "folder_paths.py").write_text("")
    assert _run(str(tmp_path)) == "dict []"


LOADED_LIKE_COMFYUI = r"""
import importlib.util, sys
path = sys.argv[1]
name = path.replace(".", "_x_")  # ComfyUI's module name for a custom-node folder (nodes.load_custom_node)
spec = importlib.util.spec_from_file_location(name, path + "/__init__.py", submodule_search_locations=[path])
module = importlib.util.module_from_spec(spec)
sys.modules[name] = module
spec.loader.exec_module(module)
errors = importlib.import_module(name + ".ltx.errors")
gguf = importlib.import_module(name + ".gguf_loader.errors")
ops = importlib.import_module(name + ".ops.attention")
for cls in (errors.InputError, errors.CheckpointError, errors.Cancelled, gguf.GGUFError, ops.AttentionBackendError):
    print(cls.__module__ + "." + cls.__qualname__)
"""


def test_error_names_do_not_show_the_folder_path(tmp_path):
    """ComfyUI imports the pack under its folder path and shows ``module.qualname`` of an error; ours read
    ``rs_ltxv.…`` instead of ``/…/custom_nodes/rs-ltxv.ltx.errors.InputError``."""
    proc = subprocess.run([sys.executable, "-c", LOADED_LIKE_COMFYUI, str(REPO)], capture_output=True, text=True,
                          check=True, timeout=120, cwd=tmp_path)
    names = proc.stdout.split()
    assert names == ["rs_ltxv.ltx.errors.InputError", "rs_ltxv.ltx.errors.CheckpointError",
                     "rs_ltxv.ltx.errors.Cancelled", "rs_ltxv.gguf_loader.errors.GGUFError",
                     "rs_ltxv.ops.attention.AttentionBackendError"]
