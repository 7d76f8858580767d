"""Packaging cannot drift: requirements.txt matches pyproject, the version is written once, the built wheel holds every
subpackage, importing the package never imports ray, and the documented node-pack install gives a working CLI.

The wheel and node-pack tests build in scratch venvs that see this venv's packages (torch, numpy, ...) through a
``.pth`` file, minus this venv's own ``rs-ltxv`` install, so nothing is downloaded while this venv has setuptools >= 68
(true for scripts/dev.sh). With an older setuptools, pip builds in an isolated environment and needs PyPI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
NOT_PACKAGED = ("tests", "benchmarks", "scripts", "example_workflows")  # top-level folders outside the package
ROOT_SCRIPTS = ("setup.py", "install.py")  # repository tools at the root, not modules of rs_ltxv
# Distribution -> why it is listed in only one of requirements.txt / pyproject dependencies. Empty today.
ONLY_IN_ONE_FILE: dict[str, str] = {}
NEVER_REQUIRED = ("torch", "torchvision", "torchaudio")  # ComfyUI brings its own builds; pip must not replace them
TIMEOUT = 240  # seconds for any one subprocess (pip builds, installs, imports of torch)


def _pyproject() -> dict:
    """pyproject.toml, parsed."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _normalized(requirement: Requirement) -> str:
    """A comparable form: canonical name, sorted extras, sorted specifiers, marker."""
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    marker = f"; {requirement.marker}" if requirement.marker else ""
    return f"{canonicalize_name(requirement.name)}{extras}{requirement.specifier}{marker}"


def _by_name(lines: list[str]) -> dict[str, str]:
    """Requirement lines by canonical distribution name, normalized."""
    requirements = [Requirement(line) for line in lines]
    return {canonicalize_name(r.name): _normalized(r) for r in requirements}


def _requirements_txt_lines() -> list[str]:
    """The requirement lines of requirements.txt (comments and blank lines dropped)."""
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _source_files() -> list[str]:
    """What a clone holds: tracked and untracked-not-ignored files of the working tree that exist now."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            check=True, timeout=60).stdout.decode().split("\0")
    return sorted(p for p in listed if p and (ROOT / p).is_file())


def _folder(path: str) -> str:
    """The relative folder of a relative file path, '' for the root."""
    parent = Path(path).parent.as_posix()
    return "" if parent == "." else parent


def _package_dirs(files: list[str]) -> list[str]:
    """Relative folders holding an ``__init__.py`` ('' for the root), tests/ benchmarks/ etc. excluded."""
    dirs = {_folder(f) for f in files if Path(f).name == "__init__.py"}
    return sorted(d for d in dirs if d.split("/")[0] not in NOT_PACKAGED)


def _module_name(package_dir: str) -> str:
    """``ltx/audio`` -> ``rs_ltxv.ltx.audio``."""
    return ".".join(["rs_ltxv", *filter(None, package_dir.split("/"))])


def _copy_tree(dest: Path) -> list[str]:
    """Copy the working tree as a fresh clone would have it (uncommitted edits included) into ``dest``; return the
    relative paths copied (a file removed meanwhile is skipped)."""
    copied = []
    for rel in _source_files():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(ROOT / rel, dest / rel)
        except FileNotFoundError:
            continue
        copied.append(rel)
    return copied


def _env() -> dict[str, str]:
    """The environment for subprocesses: no inherited PYTHONPATH or user site, quiet non-interactive pip."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def _run(command: list[str], cwd: Path, timeout: int = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run with a bounded time; the output goes into the assertion message on failure."""
    proc = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{command} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def _can_build_offline() -> bool:
    """Whether this venv's setuptools can build the pack without build isolation (no PyPI access needed)."""
    try:
        return tuple(int(n) for n in re.findall(r"\d+", version("setuptools"))[:2]) >= (70, 1)
    except PackageNotFoundError:
        return False


def _scratch_venv(path: Path) -> Path:
    """A venv without pip whose site-packages sees this venv's packages (pip, torch, ...) except rs-ltxv itself."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=TIMEOUT)
    python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], path)
    shared = path / "shared-site-packages"
    shared.mkdir()
    sources = {Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    for source in sources:
        for entry in source.iterdir():
            hidden = entry.name.startswith(("rs_ltxv", "rs-ltxv", "__editable__")) or entry.suffix == ".pth"
            if not hidden and not (shared / entry.name).exists():
                (shared / entry.name).symlink_to(entry)
    (Path(purelib.stdout.strip()) / "shared-dev-venv.pth").write_text(f"{shared}\n")
    return python


IMPORT_ALL = """
import importlib, json, sys
names = json.loads(sys.argv[1])
modules = [importlib.import_module(name) for name in names]
import rs_ltxv
from importlib.metadata import version
print(json.dumps({"file": rs_ltxv.__file__, "version": rs_ltxv.__version__, "dist": version("rs-ltxv"),
                  "heavy": sorted(m for m in ("ray", "comfy", "folder_paths") if m in sys.modules)}))
"""


def _import_all(python: Path | str, cwd: Path, names: list[str], pythonpath: str | None = None) -> dict:
    """Import ``names`` in a fresh ``python``; report rs_ltxv's file, versions and heavy modules loaded."""
    command = [str(python), "-c", IMPORT_ALL, json.dumps(names)]
    env = _env()
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"importing {names} failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_requirements_lines_are_plain_requirements():
    # ComfyUI-Manager runs `pip install <line>` per line: options, `-e .` or inline comments would break it.
    for line in _requirements_txt_lines():
        try:
            Requirement(line)
        except InvalidRequirement as exc:
            pytest.fail(f"requirements.txt line {line!r} is not a plain requirement: {exc}")
        assert "#" not in line, f"requirements.txt line {line!r}: no inline comments"


def test_requirements_txt_matches_pyproject_dependencies():
    in_txt = _by_name(_requirements_txt_lines())
    in_toml = _by_name(_pyproject()["project"]["dependencies"])
    for name in ONLY_IN_ONE_FILE:
        in_txt.pop(name, None)
        in_toml.pop(name, None)
    assert sorted(in_txt) == sorted(in_toml), "requirements.txt and pyproject dependencies list different packages"
    assert in_txt == in_toml, "requirements.txt and pyproject dependencies disagree on versions"


def test_torch_is_never_a_requirement_only_an_extra():
    project = _pyproject()["project"]
    listed = {*_by_name(_requirements_txt_lines()), *_by_name(project["dependencies"])}
    assert not listed & set(NEVER_REQUIRED)
    assert [canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["torch"]] == ["torch"]


def test_version_is_written_once():
    project_version = _pyproject()["project"]["version"]
    written = re.compile(rf"(?<![\w.]){re.escape(project_version)}(?![\w.])")
    files = _source_files()
    package_dirs = _package_dirs(files)
    code = [f for f in files if f.endswith(".py") and _folder(f) in package_dirs]
    copies = [f for f in code if written.search((ROOT / f).read_text("utf-8"))]
    assert copies == [], f"version {project_version} written again in {copies}: read it from pyproject.toml"
    import rs_ltxv

    assert rs_ltxv.__version__ == project_version


def test_version_reader_never_crashes(tmp_path):
    import rs_ltxv

    table = '[tool.x]\nversion = "9"\n[project]\nname = "rs-ltxv"\nversion = "1.2.3"  # note\n'
    (tmp_path / "pyproject.toml").write_text(table)
    assert rs_ltxv._project_version(tmp_path / "pyproject.toml") == "1.2.3"
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert rs_ltxv._project_version(tmp_path / "pyproject.toml") is None


@pytest.mark.parametrize("comfyui_importable", [False, True], ids=["library", "under-comfyui"])
def test_importing_every_subpackage_does_not_import_ray(tmp_path, comfyui_importable):
    """ray is a dependency, but is imported only when distributed work is requested (and never pulls ComfyUI)."""
    stub = None
    if comfyui_importable:
        (tmp_path / "comfy").mkdir()
        (tmp_path / "comfy" / "__init__.py").write_text("")
        (tmp_path / "folder_paths.py").write_text("")
        stub = str(tmp_path)
    names = [_module_name(d) for d in _package_dirs(_source_files())]
    result = _import_all(sys.executable, tmp_path, names, pythonpath=stub)
    assert result["heavy"] == [], f"importing {names} imported {result['heavy']}"


def test_wheel_holds_every_subpackage_and_installs(tmp_path):
    """Build the wheel from a clean copy, install it in a scratch venv, import every package folder found on disk."""
    src = tmp_path / "src"
    files = _copy_tree(src)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(src)]
    _run(build + (["--no-build-isolation"] if _can_build_offline() else []), tmp_path)
    (wheel,) = (tmp_path / "dist").glob("rs_ltxv-*.whl")

    package_dirs = _package_dirs(files)
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    modules = {f for f in files if _folder(f) in package_dirs and f.endswith(".py") and f not in ROOT_SCRIPTS}
    data = {f for f in files if Path(f).parent.name == "data" and _folder(_folder(f)) in package_dirs}
    expected = {f"rs_ltxv/{f}" for f in modules | data}
    assert expected, "no package files found"
    assert sorted(expected - in_wheel) == [], "files missing from the wheel"
    unwanted = [n for n in in_wheel if n.split("/")[1] in (*NOT_PACKAGED, *ROOT_SCRIPTS)]
    assert unwanted == [], "the wheel ships repository tools"

    python = _scratch_venv(tmp_path / "venv")
    _run([str(python), "-m", "pip", "install", "--no-deps", str(wheel)], tmp_path)
    result = _import_all(python, tmp_path, [_module_name(d) for d in package_dirs])
    assert Path(result["file"]).is_relative_to(tmp_path / "venv"), f"imported {result['file']}, not the wheel"
    assert result["version"] == result["dist"] == _pyproject()["project"]["version"]
    assert result["heavy"] == []


def test_node_pack_install_gives_a_working_cli(tmp_path):
    """The README's install (clone into custom_nodes, run install.py with ComfyUI's Python, as ComfyUI-Manager
    does) makes ``python -m rs_ltxv`` work from any folder, whatever the pack folder is called."""
    pack = tmp_path / "ComfyUI" / "custom_nodes" / "ComfyUI RS LTXV"
    _copy_tree(pack)
    python = _scratch_venv(tmp_path / "comfy venv")
    install = _run([str(python), "install.py"], pack)
    assert "rs_ltxv" in install.stdout

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cli = _run([str(python), "-m", "rs_ltxv", "--help"], elsewhere)
    assert cli.stdout.startswith("usage: ")
    result = _import_all(python, elsewhere, ["rs_ltxv"])
    assert Path(result["file"]).resolve() == (pack / "__init__.py").resolve(), "rs_ltxv is not the pack folder"
    assert result["version"] == _pyproject()["project"]["version"]
    console_script = python.parent / ("rs-ltxv.exe" if os.name == "nt" else "rs-ltxv")
    assert console_script.exists()
