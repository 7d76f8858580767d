"""Rules the test suite keeps, checked on its source with ``ast``:

* test modules never import each other: what they share (builders, the ComfyUI server, constants) lives in
  ``tests/reference/`` or ``conftest.py``;
* one condition per assert (no ``assert a and b``), so a failure says which part failed;
* tests that need ComfyUI or a CUDA device say so with the ``comfyui`` / ``cuda`` markers (``conftest.py`` turns
  them into skips with a reason), so ``-m "not comfyui"`` and ``-m cuda`` select them; every marker used is declared.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SOURCES = sorted([*TESTS.glob("*.py"), *TESTS.glob("reference/*.py")])
IMPORTERS = [*SOURCES, *sorted(TESTS.parent.glob("benchmarks/*.py"))]  # benchmarks reuse the reference builders
TEST_MODULES = {p.stem for p in TESTS.glob("test_*.py")}
BUILTIN_MARKS = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(TESTS.parent)}:{node.lineno}"


def _module_marks(tree: ast.Module) -> set[str]:
    """The ``pytest.mark.<name>`` names in the module-level ``pytestmark``."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            return {n.attr for n in ast.walk(node.value)
                    if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute) and n.value.attr == "mark"}
    return set()


def test_no_module_imports_a_test_module():
    found = []
    for path in IMPORTERS:
        for node in ast.walk(_tree(path)):  # function-local imports count too
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [f"{_where(path, node)} imports {name}" for name in names
                      if name.split(".")[0] in TEST_MODULES]
    assert not found, ("a test module is imported; move what is shared to tests/reference/ or conftest.py:\n"
                       + "\n".join(found))


def _is_composite(node: ast.AST) -> bool:
    """``assert a and b``: an assert whose condition is a top-level ``and`` (inside a call it is one fact)."""
    return isinstance(node, ast.Assert) and isinstance(node.test, ast.BoolOp) and isinstance(node.test.op, ast.And)


def test_one_condition_per_assert():
    found = [_where(path, node) for path in SOURCES for node in ast.walk(_tree(path)) if _is_composite(node)]
    assert not found, "split `assert a and b` into one assert per condition:\n" + "\n".join(found)


def test_comfyui_and_cuda_needs_are_markers():
    """ComfyUI modules carry ``pytestmark = pytest.mark.comfyui``; no test skips on its own for a missing ComfyUI or
    CUDA device (that would hide it from ``-m`` selection): they use the markers."""
    unmarked, own_skips = [], []
    for path in sorted(TESTS.glob("test_*.py")):
        tree = _tree(path)
        uses_comfyui = path.stem.endswith("_comfyui") or any(
            isinstance(node, ast.ImportFrom) and node.module == "reference.comfyui"
            and {alias.name for alias in node.names} & {"COMFYUI", "serve"} for node in ast.walk(tree))
        if uses_comfyui and "comfyui" not in _module_marks(tree):
            unmarked.append(path.name)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "skipif"
                    and node.args and any(s in ast.unparse(node.args[0]) for s in ("cuda", "COMFYUI"))):
                own_skips.append(_where(path, node))
    assert not unmarked, f"needs ComfyUI but lacks pytestmark = pytest.mark.comfyui: {unmarked}"
    assert not own_skips, f"use the cuda / comfyui marker instead of skipif: {own_skips}"


def test_every_marker_used_is_declared(pytestconfig):
    declared = {line.split(":", 1)[0].strip() for line in pytestconfig.getini("markers")}
    assert {"slow", "comfyui", "cuda"} <= declared
    used = {}
    for path in SOURCES:
        for node in ast.walk(_tree(path)):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "mark"
                    and isinstance(node.value.value, ast.Name) and node.value.value.id == "pytest"):
                used.setdefault(node.attr, _where(path, node))
    undeclared = {name: where for name, where in used.items() if name not in declared | BUILTIN_MARKS}
    assert not undeclared, f"markers used but not declared in pyproject.toml: {undeclared}"
