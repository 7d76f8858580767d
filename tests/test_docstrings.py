"""Docstrings of the public API (issue 11 item 5, ``code_review.md`` finding 3), checked on the source with ``ast``.

Public: a class or function at module level, or a method of a public class, whose name has no leading underscore,
in a module whose file name has none (``__init__.py`` counts). Dunder methods are left out: the class docstring
documents the constructor. Nothing is imported, so the test runs without ComfyUI or a GPU. Rules:

1. every public symbol has a docstring;
2. a public function or method with a parameter or return annotated with a tensor (``Tensor`` anywhere in the
   annotation) states a shape: a parenthesised tuple such as ``(B, T, D)`` or ``(N,)``, or the word "shape";
3. a public function or method whose body raises a project error (a class of ``ltx/errors.py`` or
   ``gguf_loader/errors.py``, one derived from them, or an ``…Error`` class of the scanned code) has a ``Raises``
   section or names the error class;
4. a docstring that points at "the reference" names the symbol: an ``ltx_core.…`` / ``diffusers.…`` /
   ``transformers.…`` path (or says ltx-core / diffusers / Hugging Face).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the model code, then the folders whose docstrings are written in the same pass by another change
FOLDERS = ("ltx/transformer", "ltx/text", "ltx/video_vae", "ltx/video_vae/diffusion", "ltx/audio", "ltx/pipeline",
           "ltx/loading", "gguf_loader", "ops", "distributed")
FILES = ("ltx/upsampler.py", "ltx/tokens.py", "ltx/config.py", "ltx/random_weights.py", "ltx/tiny.py",
         "ltx/tiny_parts.py", "ltx/errors.py", "ltx/duration_head.py", "ltx/tiny_gemma4.py")
ERROR_MODULES = ("ltx/errors.py", "gguf_loader/errors.py")

SHAPE = re.compile(r"\([^()]*,[^()]*\)|\bshape\b", re.IGNORECASE)
VAGUE_REFERENCE = re.compile(r"\bthe\s+reference\b", re.IGNORECASE)  # also across a line break
NAMED_SOURCE = re.compile(r"ltx_core\.|ltx-core|diffusers|transformers\.|Hugging Face")


@dataclass(frozen=True)
class Symbol:
    path: str
    qualname: str
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef

    @property
    def doc(self) -> str:
        return ast.get_docstring(self.node) or ""

    def key(self, rule: str) -> str:
        return f"{self.path}::{self.qualname}: {rule}"


def _sources() -> list[Path]:
    paths = [p for folder in FOLDERS for p in sorted((ROOT / folder).glob("*.py"))]
    return [*paths, *(ROOT / f for f in FILES)]


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _public(name: str) -> bool:
    return not name.startswith("_")


def _is_accessor(node: ast.AST) -> bool:
    """``@x.setter`` / ``@x.deleter``: documented by the property's getter."""
    return any(isinstance(d, ast.Attribute) and d.attr in ("setter", "deleter")
               for d in getattr(node, "decorator_list", ()))


def _symbols() -> Iterator[Symbol]:
    for path in _sources():
        if not (path.name == "__init__.py" or _public(path.stem)):
            continue
        rel = path.relative_to(ROOT).as_posix()
        for node in _tree(path).body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or not _public(node.name):
                continue
            yield Symbol(rel, node.name, node)
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if (isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _public(item.name)
                            and not _is_accessor(item)):
                        yield Symbol(rel, f"{node.name}.{item.name}", item)


SYMBOLS = list(_symbols())
FUNCTIONS = [s for s in SYMBOLS if not isinstance(s.node, ast.ClassDef)]


def _project_errors() -> frozenset[str]:
    """Class names of the project's errors: those of ``ERROR_MODULES``, the classes derived from them, and every
    ``…Error`` class of the scanned code."""
    classes = [n for p in [*(ROOT / m for m in ERROR_MODULES), *_sources()] for n in ast.walk(_tree(p))
               if isinstance(n, ast.ClassDef)]
    names = {n.name for p in ERROR_MODULES for n in _tree(ROOT / p).body if isinstance(n, ast.ClassDef)}
    names |= {c.name for c in classes if c.name.endswith("Error")}
    grown = True
    while grown:
        derived = {c.name for c in classes if any(ast.unparse(b).rpartition(".")[2] in names for b in c.bases)}
        grown = not derived <= names
        names |= derived
    return frozenset(names)


PROJECT_ERRORS = _project_errors()


def _takes_tensors(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = node.args
    annotations = [a.annotation for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
                   if a is not None]
    return any(a is not None and "Tensor" in ast.unparse(a) for a in [*annotations, node.returns])


def _raised_errors(node: ast.AST) -> set[str]:
    found = set()
    for raise_ in (n for n in ast.walk(node) if isinstance(n, ast.Raise) and n.exc is not None):
        target = raise_.exc.func if isinstance(raise_.exc, ast.Call) else raise_.exc
        name = ast.unparse(target).rpartition(".")[2]
        if name in PROJECT_ERRORS:
            found.add(name)
    return found


def _missing_docstrings() -> set[str]:
    return {s.key("docstring") for s in SYMBOLS if not s.doc.strip()}


def _missing_shapes() -> set[str]:
    return {s.key("shape") for s in FUNCTIONS if s.doc and _takes_tensors(s.node) and not SHAPE.search(s.doc)}


def _missing_raises() -> set[str]:
    out = set()
    for s in FUNCTIONS:
        errors = _raised_errors(s.node)
        if s.doc and errors and "Raises" not in s.doc and not any(e in s.doc for e in errors):
            out.add(s.key("raises"))
    return out


def _vague_references() -> set[str]:
    docs = [(p.relative_to(ROOT).as_posix(), "<module>", ast.get_docstring(_tree(p)) or "") for p in _sources()]
    docs += [(s.path, s.qualname, s.doc) for s in SYMBOLS]
    return {f"{path}::{name}: reference" for path, name, doc in docs
            if VAGUE_REFERENCE.search(doc) and not NAMED_SOURCE.search(doc)}


def _report(found: set[str], what: str) -> str:
    return f"{len(found)} {what}:\n" + "\n".join(sorted(found))


def test_the_walk_finds_the_public_api():
    names = {f"{s.path}::{s.qualname}" for s in SYMBOLS}
    for expected in ("ltx/transformer/model.py::LTXAVTransformer.forward", "ltx/tokens.py::video_positions",
                     "ltx/video_vae/tiled.py::decode_tiled", "ltx/audio/__init__.py::build_vocoder"):
        assert expected in names, expected
    assert "InputError" in PROJECT_ERRORS
    assert "GGUFError" in PROJECT_ERRORS


def test_public_symbols_have_docstrings():
    missing = _missing_docstrings()
    assert not missing, _report(missing, "public symbols without a docstring")


def test_tensor_functions_state_shapes():
    missing = _missing_shapes()
    assert not missing, _report(missing, "functions on tensors whose docstring states no shape")


def test_functions_that_raise_project_errors_say_so():
    missing = _missing_raises()
    assert not missing, _report(missing, "functions that raise a project error without a Raises section")


def test_references_name_the_symbol():
    vague = _vague_references()
    assert not vague, _report(vague, "docstrings that say 'the reference' without naming the ltx-core symbol")
