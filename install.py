"""Install RS-LTXV into the Python that runs this file: its requirements, then this folder as the package ``rs_ltxv``.

ComfyUI-Manager (and comfy-cli) run it automatically after cloning the pack; by hand, run it with ComfyUI's Python:

    python custom_nodes/<pack folder>/install.py

Afterwards ``python -m rs_ltxv --help`` (and the ``rs-ltxv`` command) work from any folder with that Python. The pack
is installed in editable mode, so ``git pull`` in the pack folder updates the command line too. torch is never
installed (ComfyUI brings its own build). Any folder name works, spaces included. Undo with ``pip uninstall rs-ltxv``.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACK = Path(__file__).resolve().parent


def pip_install() -> list[str]:
    """The ``pip install`` command for this Python: its own pip, else uv's pip (uv-made venvs have no pip)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
    uv = shutil.which("uv")
    if uv:
        return [uv, "pip", "install", "--python", sys.executable]
    raise SystemExit(f"[rs-ltxv] {sys.executable} has no pip (and uv is not on PATH): install pip, then rerun.")


def _release(dist: str) -> tuple[int, ...] | None:
    """The leading numbers of an installed distribution's version, or None if it is not installed."""
    try:
        return tuple(int(n) for n in re.findall(r"\d+", version(dist))[:2])
    except PackageNotFoundError:
        return None


def build_isolation() -> list[str]:
    """``--no-build-isolation`` when this Python can build the pack itself (works offline, faster), else nothing:
    pip then fetches setuptools into a temporary build environment."""
    setuptools = _release("setuptools")
    if setuptools is None or setuptools < (68, 0):
        return []
    # setuptools < 70.1 builds wheels (editable ones too) with the separate `wheel` package.
    if setuptools < (70, 1) and _release("wheel") is None:
        return []
    return ["--no-build-isolation"]


def steps() -> list[tuple[str, list[str]]]:
    """(what, command) for each install step; paths are absolute, so the caller's working folder does not matter."""
    pip = pip_install()
    return [
        ("requirements (torch excluded)", [*pip, "-r", str(PACK / "requirements.txt")]),
        ("this folder as package rs_ltxv (editable)", [*pip, "--no-deps", *build_isolation(), "-e", str(PACK)]),
    ]


def main() -> int:
    """Run the install steps, printing each command; return pip's exit status on failure, 0 on success."""
    # pip runs from a neutral folder: `python -m pip` puts its working folder on sys.path, and this folder's
    # subpackages (ops/, nodes/, client/ ...) must not shadow anything pip imports.
    with tempfile.TemporaryDirectory(prefix="rs-ltxv-install-") as neutral:
        for what, command in steps():
            print(f"[rs-ltxv] installing {what}: {shlex.join(command)}", flush=True)
            status = subprocess.call(command, cwd=neutral)
            if status != 0:
                print(f"[rs-ltxv] failed (exit status {status}) while installing {what}.", flush=True)
                return status
    print(f"[rs-ltxv] done: package rs_ltxv -> {PACK}", flush=True)
    print(f"[rs-ltxv] command line: {shlex.join([sys.executable, '-m', 'rs_ltxv', '--help'])} (from any folder)",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
