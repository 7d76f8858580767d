"""The package's import graph: no cycles (imports inside functions count) and the layering of design.md's "Layout".

Every ``.py`` of the package (the repository root and each folder below it with an ``__init__.py``) is parsed with
:mod:`ast`; relative imports are resolved to modules (``from . import x`` → the submodule ``x`` when there is one,
``from .x import y`` → ``x`` or its submodule ``y``). Nothing is imported, so the test runs without ComfyUI, ray or
a GPU.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = "rs_ltxv"

#: design.md "Layout": the only folders of the package a folder may import ("may import" column)
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "ltx": ("ltx", "ops", "gguf_loader"),
    "ops": ("ops",),
    "gguf_loader": ("gguf_loader",),
    "distributed": ("distributed", "ltx", "ops"),
}
#: "Only nodes/ (and the guarded entry point) import ComfyUI"
COMFY_MODULES = ("comfy", "comfy_api", "comfy_extras", "folder_paths", "server", "execution")
COMFY_ALLOWED = (PKG, f"{PKG}.nodes")
#: folders that never import nodes/ nor ComfyUI (library code must be testable with plain pytest)
NO_NODES = ("ltx", "ops", "gguf_loader", "distributed")
#: "No torchaudio and no torchvision anywhere"
BANNED_EVERYWHERE = ("torchaudio", "torchvision")
#: inside ltx/: the model code below, then checkpoint loading, then the pipeline ("given model parts")
LTX_MODELS = ("text", "transformer", "video_vae", "audio", "upsampler", "config", "tokens", "errors")
LTX_ABOVE_MODELS = ("loading", "pipeline")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PKG, *parts])


def package_files() -> dict[str, Path]:
    """Module name → file for every module of the package (folders count only with an ``__init__.py`` chain)."""
    files: dict[str, Path] = {}
    todo = [ROOT]
    while todo:
        folder = todo.pop()
        for path in sorted(folder.iterdir()):
            if path.is_dir() and not path.name.startswith(".") and (path / "__init__.py").is_file():
                todo.append(path)
            elif path.suffix == ".py":
                files[_module_name(path)] = path
    return files


def _resolve(target: str, modules: set[str]) -> str:
    """The longest known module that ``target`` names or lies in."""
    while target not in modules and "." in target:
        target = target.rpartition(".")[0]
    return target


def imports_of(name: str, path: Path, modules: set[str]) -> tuple[set[str], set[str]]:
    """(modules of the package, top-level external modules) imported anywhere in the file, functions included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    internal: set[str] = set()
    external: set[str] = set()

    def add(target: str) -> None:
        if target == PKG or target.startswith(PKG + "."):
            internal.add(_resolve(target, modules))
        else:
            external.add(target.partition(".")[0])

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    internal.discard(name)
    return internal, external


@pytest.fixture(scope="module")
def graph() -> dict[str, tuple[set[str], set[str]]]:
    files = package_files()
    assert f"{PKG}.ltx.loading.checkpoint" in files, sorted(files)[:10]
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``a → b → … → a``) per strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [_one_cycle(set(c), edges) for c in components]


def _one_cycle(component: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, set()) & component):
                if w == start:
                    return [*paths[v], start]
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    return sorted(component)


def _in(module: str, folders: Iterable[str]) -> bool:
    return any(module == f"{PKG}.{f}" or module.startswith(f"{PKG}.{f}.") for f in folders)


def _violations(graph, rule) -> list[str]:
    return sorted(f"{name} imports {target}" for name, (internal, _) in graph.items() for target in internal
                  if rule(name, target))


def test_finds_a_planted_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycles(edges) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_relative_imports_resolve_to_modules(graph):
    internal, external = graph[f"{PKG}.ltx.loading.checkpoint"]
    assert f"{PKG}.ltx.errors" in internal
    assert f"{PKG}.ltx.loading.layout" in internal
    assert "torch" in external


def test_no_import_cycles(graph):
    cycles = find_cycles({name: internal for name, (internal, _) in graph.items()})
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_folders_import_only_what_the_layout_allows(graph):
    def forbidden(name: str, target: str) -> bool:
        folder = name.split(".")[1] if name.count(".") else ""
        return folder in MAY_IMPORT and not _in(target, MAY_IMPORT[folder])

    assert not _violations(graph, forbidden)


def test_library_code_never_imports_nodes(graph):
    assert not _violations(graph, lambda name, target: _in(name, NO_NODES) and _in(target, ("nodes",)))


#: the client (``python -m rs_ltxv submit``) converts UI workflows to API prompts with the node specs, which are
#: plain data; it may use these two modules of ``nodes/`` and nothing else there
CLIENT_MAY_USE = (f"{PKG}.nodes", f"{PKG}.nodes.workflows", f"{PKG}.nodes.specs")


def test_client_uses_only_the_node_specs(graph):
    assert not _violations(graph, lambda name, target: _in(name, ("client",)) and _in(target, ("nodes",))
                           and target not in CLIENT_MAY_USE)
    for module in CLIENT_MAY_USE[1:]:
        internal, external = graph[module]
        assert internal <= {f"{PKG}.nodes", *CLIENT_MAY_USE}, f"{module} imports {internal}"
        assert not {e for e in external if e.split(".")[0] in ("comfy", "comfy_api", "folder_paths", "torch")}


def test_only_nodes_import_comfyui(graph):
    bad = sorted(f"{name} imports {ext}" for name, (_, external) in graph.items() for ext in external
                 if ext in COMFY_MODULES and name != PKG and not _in(name, ("nodes",)))
    assert not bad


def test_no_torchaudio_or_torchvision(graph):
    bad = sorted(f"{name} imports {ext}" for name, (_, external) in graph.items() for ext in external
                 if ext in BANNED_EVERYWHERE)
    assert not bad


def test_model_code_does_not_import_loading_or_pipeline(graph):
    """Loading builds models and the pipeline runs them: model code (text, transformer, VAEs, upsampler, configs)
    imports neither, and loading does not import the pipeline."""
    def upward(name: str, target: str) -> bool:
        if _in(name, [f"ltx.{m}" for m in LTX_MODELS]):
            return _in(target, [f"ltx.{m}" for m in LTX_ABOVE_MODELS])
        return _in(name, ("ltx.loading",)) and _in(target, ("ltx.pipeline",))

    assert not _violations(graph, upward)
