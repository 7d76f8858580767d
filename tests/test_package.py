"""The package imports cleanly as a library and under ComfyUI, and never pulls in ComfyUI, torchaudio or
torchvision by itself."""

from __future__ import annotations

import os
import subprocess
import sys

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
