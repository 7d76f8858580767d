"""Loading an API-format prompt, checking its shape, and ``--set NODE.input=value`` overrides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import ClientError

EXPORT_HINT = ("export it in API format from ComfyUI (Workflow → Export (API)), or use the API version in "
               "example_workflows/api/")


def is_ui_workflow(data: Any) -> bool:
    """The LiteGraph graph the editor saves (``nodes`` / ``links`` lists), not an API prompt."""
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data


def validate_prompt(prompt: Any) -> list[str]:
    """Shape problems of an API-format prompt ``{id: {"class_type", "inputs": {name: value | [id, slot]}}}``."""
    if not isinstance(prompt, dict) or not prompt:
        return ["an API prompt is a non-empty JSON object of nodes by id"]
    problems = []
    for node_id, node in prompt.items():
        where = f"node {node_id}"
        if not isinstance(node, dict):
            problems.append(f"{where}: not an object")
            continue
        if not isinstance(node.get("class_type"), str) or not node["class_type"]:
            problems.append(f"{where}: no class_type")
        inputs = node.get("inputs")
        if not isinstance(inputs, dict):
            problems.append(f"{where}: no inputs object")
            continue
        for name, value in inputs.items():
            if is_link(value) and str(value[0]) not in prompt:
                problems.append(f"{where}: input {name!r} links to missing node {value[0]}")
    return problems


def is_link(value: Any) -> bool:
    """Whether an API-prompt input value is a link ``[source node id, output slot]``."""
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and isinstance(value[1], int) and not isinstance(value[1], bool))


def _convert_ui(workflow: dict, path: Path) -> dict:
    """A UI workflow made only of nodes whose definitions we carry (ours and the core subset) → API format, with
    the pack's converter (:func:`rs_ltxv.nodes.workflows.ui_to_api`).

    Raises:
        ClientError: the converter cannot be imported, a node type is unknown here, the workflow uses subgraphs,
            or it cannot be converted; the message ends with the export hint.
    """
    types = sorted({str(n.get("type")) for n in workflow["nodes"]})
    try:
        from ..nodes.workflows import all_specs, ui_to_api

        specs = all_specs()
    except Exception as exc:  # the converter needs the pack's own imports (torch)
        raise ClientError(f"{path} is a UI-format workflow and it cannot be converted here ({exc}); "
                          f"{EXPORT_HINT}") from exc
    unknown = [t for t in types if t not in specs]
    if unknown or workflow.get("definitions", {}).get("subgraphs"):
        what = f"node types {', '.join(unknown)} are unknown here" if unknown else "it uses subgraphs"
        raise ClientError(f"{path} is a UI-format workflow (the graph the editor saves), not an API prompt, and "
                          f"it cannot be converted here: {what}; {EXPORT_HINT}")
    try:
        return ui_to_api(workflow, specs)
    except (ValueError, KeyError) as exc:
        raise ClientError(f"{path} is a UI-format workflow that cannot be converted ({exc}); {EXPORT_HINT}") from exc


def load_prompt(path: str | Path, convert_ui: bool = True) -> tuple[dict, bool]:
    """Read a prompt file; returns (API prompt, whether it was converted from a UI workflow). Also accepts a saved
    ``/prompt`` body ``{"prompt": {...}, ...}``.

    Raises:
        ClientError: the file is missing, unreadable or not JSON; a UI workflow that cannot be (or, without
            ``convert_ui``, may not be) converted; not an API prompt (:func:`validate_prompt`'s problems).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ClientError(f"no such prompt file: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ClientError(f"{path} is not valid JSON: {exc}") from exc
    converted = False
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "class_type" not in data["prompt"]:
        data = data["prompt"]
    if is_ui_workflow(data):
        if not convert_ui:
            raise ClientError(f"{path} is a UI-format workflow (the graph the editor saves), not an API prompt; "
                              f"{EXPORT_HINT}")
        data, converted = _convert_ui(data, path), True
    problems = validate_prompt(data)
    if problems:
        raise ClientError(f"{path} is not an API-format prompt: " + "; ".join(problems[:10]))
    return data, converted


def parse_override(text: str) -> tuple[str, str, str]:
    """``NODE.input=value`` → (node, input, raw value). NODE is an id, a node title or a class_type.

    Raises:
        ClientError: ``text`` is not of that form.
    """
    target, sep, value = text.partition("=")
    node, dot, name = target.rpartition(".")
    if not sep or not dot or not node or not name:
        raise ClientError(f"--set {text!r}: expected NODE.input=value (NODE: id, title or class_type), "
                          "e.g. --set 7.seed=1 or --set Prompt.text='a cat'")
    return node.strip(), name.strip(), value


def find_node(prompt: dict, ref: str) -> str:
    """The id of the node that ``ref`` names: an id, else a unique ``_meta.title``, else a unique class_type.

    Raises:
        ClientError: no node, or several nodes, match ``ref``.
    """
    if ref in prompt:
        return ref
    for key in (lambda n: n.get("_meta", {}).get("title"), lambda n: n.get("class_type")):
        hits = [node_id for node_id, node in prompt.items() if key(node) == ref]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ClientError(f"--set: {ref!r} matches nodes {', '.join(hits)}; use the node id")
    raise ClientError(f"--set: no node {ref!r} (ids: {', '.join(prompt)})")


def convert_value(raw: str, current: Any) -> Any:
    """Text inputs stay text; anything else is read as JSON (42, 1.5, true, "x") and falls back to text."""
    if isinstance(current, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def apply_overrides(prompt: dict, overrides: list[str]) -> dict:
    """A copy of ``prompt`` with every ``NODE.input=value`` applied. Only inputs the node already has can be set,
    and only widget values (not links).

    Raises:
        ClientError: a malformed override, an unknown node or input, or an input that is a link.
    """
    prompt = json.loads(json.dumps(prompt))
    for text in overrides:
        ref, name, raw = parse_override(text)
        node_id = find_node(prompt, ref)
        inputs = prompt[node_id]["inputs"]
        where = f"node {node_id} ({prompt[node_id]['class_type']})"
        if name not in inputs:
            raise ClientError(f"--set {text!r}: {where} has no input {name!r} (inputs: {', '.join(inputs)})")
        if is_link(inputs[name]):
            raise ClientError(f"--set {text!r}: input {name!r} of {where} is connected to node {inputs[name][0]}")
        inputs[name] = convert_value(raw, inputs[name])
    return prompt


def describe_node(prompt: dict, node_id: Any) -> str:
    """``7 (RS LTXV Generate)`` / ``7 (RSLTXVGenerate)``."""
    node = prompt.get(str(node_id)) or {}
    name = node.get("_meta", {}).get("title") or node.get("class_type")
    return f"{node_id} ({name})" if name else str(node_id)
