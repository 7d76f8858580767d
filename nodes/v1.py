"""Build ComfyUI V1 node classes (INPUT_TYPES / RETURN_TYPES / FUNCTION / CATEGORY) from :mod:`.specs`.

Kept in one module so a move to the V3 schema changes one file. No ComfyUI import: dynamic file combos are filled
through :mod:`.comfy_env` when ComfyUI asks for ``INPUT_TYPES``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from . import comfy_env
from .convert import checked_widgets, validate_widgets
from .specs import InputSpec, NodeSpec


def input_entry(spec: InputSpec) -> tuple[Any, ...]:
    """One INPUT_TYPES entry: ``(TYPE, options)`` or ``([choices], options)`` for a combo."""
    opts: dict[str, Any] = {}
    if spec.tooltip:
        opts["tooltip"] = spec.tooltip
    if spec.advanced:
        opts["advanced"] = True
    if spec.type == "COMBO":
        choices = list(spec.options) if spec.options else comfy_env.list_models(
            spec.folders, with_dirs="text_encoders" in spec.folders)
        if spec.default is not None:
            opts["default"] = spec.default
        return (choices, opts)
    if spec.is_widget:
        opts["default"] = spec.default
        for key in ("min", "max", "step"):
            value = getattr(spec, key)
            if value is not None:
                opts[key] = int(value) if spec.type == "INT" else float(value)
        if spec.type == "STRING":
            opts["multiline"] = spec.multiline
        if spec.control_after_generate:
            opts["control_after_generate"] = True
    return (spec.type, opts)


def input_types(spec: NodeSpec) -> dict[str, dict[str, tuple]]:
    required = {i.name: input_entry(i) for i in spec.inputs if not i.optional}
    optional = {i.name: input_entry(i) for i in spec.inputs if i.optional}
    types: dict[str, dict[str, Any]] = {"required": required}
    if optional:
        types["optional"] = optional
    if spec.hidden:
        types["hidden"] = dict(spec.hidden)
    return types


def validate_inputs(spec: NodeSpec, names: tuple[str, ...]) -> Callable[..., bool | str]:
    """ComfyUI's ``VALIDATE_INPUTS`` for ``names``: True, or why the prompt cannot run. Its signature lists exactly
    ``names`` (ComfyUI passes those inputs and skips its own range check for them, which
    :func:`~.convert.validate_widgets` then does); other inputs keep ComfyUI's checks."""

    def VALIDATE_INPUTS(**values: Any) -> bool | str:
        problem = validate_widgets(spec, values)
        return True if problem is None else problem

    VALIDATE_INPUTS.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for n in names])
    return VALIDATE_INPUTS


def make_node(spec: NodeSpec, run: Callable[..., tuple]) -> type:
    """A V1 node class for ``spec`` whose ``run(**inputs)`` returns the output tuple."""

    def INPUT_TYPES(cls) -> dict:
        return input_types(spec)

    def execute(self, **kwargs):
        return run(**kwargs)

    attrs: dict[str, Any] = {}
    names = checked_widgets(spec)
    if names:
        attrs["VALIDATE_INPUTS"] = staticmethod(validate_inputs(spec, names))
    return type(spec.id, (), {
        **attrs,
        "INPUT_TYPES": classmethod(INPUT_TYPES),
        "RETURN_TYPES": tuple(o.type for o in spec.outputs),
        "RETURN_NAMES": tuple(o.name for o in spec.outputs),
        "OUTPUT_TOOLTIPS": tuple(o.tooltip for o in spec.outputs),
        "FUNCTION": "execute",
        "CATEGORY": spec.category,
        "DESCRIPTION": spec.description,
        "OUTPUT_NODE": spec.output_node,
        "SPEC": spec,
        "execute": execute,
    })
