"""The markdown node reference (for the README), rendered from :mod:`.specs` so it never drifts from the nodes."""

from __future__ import annotations

from typing import Any

from .specs import NODES, InputSpec, NodeSpec


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _range(spec: InputSpec) -> str:
    if spec.options:
        return ", ".join(spec.options)
    if spec.folders:
        return "files in " + ", ".join(f"`models/{f}`" for f in spec.folders)
    parts = []
    if spec.min is not None or spec.max is not None:
        lo = "" if spec.min is None else _fmt(spec.min if spec.type == "FLOAT" else int(spec.min))
        hi = "" if spec.max is None else _fmt(spec.max if spec.type == "FLOAT" else int(spec.max))
        parts.append(f"{lo}…{hi}")
    if spec.step is not None and spec.type == "INT" and spec.step != 1:
        parts.append(f"step {int(spec.step)}")
    return ", ".join(parts)


def render_markdown(nodes: dict[str, NodeSpec] | None = None) -> str:
    """The node reference as markdown: one section per node, one table row per input and output."""
    lines: list[str] = []
    for spec in (nodes or NODES).values():
        lines += [f"### {spec.display_name} (`{spec.id}`)", "", f"Category `{spec.category}`. {spec.description}",
                  "", "| input | type | default | range | notes |", "|---|---|---|---|---|"]
        for i in spec.inputs:
            flags = [f for f, on in (("optional", i.optional), ("advanced", i.advanced)) if on]
            note = (f"*{', '.join(flags)}*. " if flags else "") + i.tooltip.replace("|", "\\|")
            lines.append(f"| `{i.name}` | {i.type} | {_fmt(i.default)} | {_range(i)} | {note} |")
        lines += ["", "| output | type | notes |", "|---|---|---|"]
        lines += [f"| `{o.name}` | {o.type} | {o.tooltip} |" for o in spec.outputs]
        lines.append("")
    return "\n".join(lines)
