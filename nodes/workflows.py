"""Checking and converting workflows without ComfyUI: UI-format graphs (LiteGraph, what ``example_workflows/``
holds) and API-format prompts (what ``/prompt`` takes), against node definitions as :class:`~.specs.NodeSpec`.

Core nodes come from a dump of ComfyUI's ``/object_info`` (``data/core_object_info.json``, ComfyUI 0.20.1),
converted to NodeSpecs by :func:`core_specs`.

Model metadata (:func:`model_metadata_problems`): ComfyUI's frontend (1.43, ``platform/missingModel``) scans every
combo widget whose value ends in a model extension (:data:`MODEL_EXTENSIONS`); when the file is not installed its
missing-models dialog offers a download if the node's ``properties.models`` holds ``{"name", "url", "directory"}``
for that name (``directory``: the ComfyUI model folder; downloads only from :data:`DOWNLOAD_SOURCES`). The official
LTX templates carry exactly that on their loader nodes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .specs import NODES, WIDGET_TYPES, InputSpec, NodeSpec, OutputSpec

CORE_OBJECT_INFO = Path(__file__).parent / "data" / "core_object_info.json"
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
BYPASSED_MODES = (2, 4)  # muted, bypassed
#: UI-only widget values the frontend adds after an upload combo (upload button; audio also a player)
UPLOAD_EXTRAS = {"image_upload": 1, "video_upload": 1, "audio_upload": 2}
#: values the frontend's missing-model scan treats as model files (``MODEL_FILE_EXTENSIONS``, missingModelScan.ts)
MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft", ".onnx", ".gguf")
#: where the frontend downloads models from (``ALLOWED_SOURCES`` of missingModelDownload.ts, localhost left out)
DOWNLOAD_SOURCES = ("https://huggingface.co/", "https://civitai.com/")
#: the model folders of core loaders' file widgets (``folder_paths`` keys their ``INPUT_TYPES`` list); our own nodes
#: say theirs in :attr:`~.specs.InputSpec.folders`
CORE_MODEL_FOLDERS: dict[str, dict[str, tuple[str, ...]]] = {
    "CheckpointLoaderSimple": {"ckpt_name": ("checkpoints",)},
    "LoraLoaderModelOnly": {"lora_name": ("loras",)},
    "LoraLoader": {"lora_name": ("loras",)},
    "LTXAVTextEncoderLoader": {"text_encoder": ("text_encoders",), "ckpt_name": ("checkpoints",)},
    "LTXVAudioVAELoader": {"ckpt_name": ("checkpoints",)},
    "LatentUpscaleModelLoader": {"model_name": ("latent_upscale_models",)},
    "VAELoader": {"vae_name": ("vae",)},
    "UNETLoader": {"unet_name": ("diffusion_models",)},
    "CLIPLoader": {"clip_name": ("text_encoders",)},
}


def _core_input(name: str, entry: list, optional: bool) -> InputSpec:
    kind, opts = entry[0], (entry[1] if len(entry) > 1 else {}) or {}
    options: tuple[str, ...] = ()
    if isinstance(kind, list):
        kind, options = "COMBO", tuple(kind)
    elif kind == "COMBO":
        options = tuple(opts.get("options", ()))
    extras = sum(n for key, n in UPLOAD_EXTRAS.items() if opts.get(key))
    if extras:
        options = ()  # the user's own files: any name
    return InputSpec(name, kind, opts.get("default"), opts.get("min"), opts.get("max"), opts.get("step"),
                     opts.get("tooltip", ""), optional=optional, advanced=bool(opts.get("advanced")),
                     options=options, multiline=bool(opts.get("multiline")),
                     control_after_generate=bool(opts.get("control_after_generate")), ui_extras=extras)


def spec_from_object_info(name: str, info: dict[str, Any]) -> NodeSpec:
    """One ``/object_info`` entry (ComfyUI's ``server.PromptServer`` ``node_info``: ``input``, ``input_order``,
    ``output``, ``output_name`` …) → NodeSpec (inputs in ``input_order``)."""
    inputs = []
    order = info.get("input_order") or {k: list(v) for k, v in info["input"].items() if k != "hidden"}
    for group in ("required", "optional"):
        for input_name in order.get(group, []):
            inputs.append(_core_input(input_name, info["input"][group][input_name], group == "optional"))
    outputs = tuple(OutputSpec(n, t) for n, t in zip(info.get("output_name", info["output"]), info["output"],
                                                     strict=True))
    return NodeSpec(name, info.get("display_name", name), info.get("description", ""), tuple(inputs), outputs,
                    category=info.get("category", ""), output_node=bool(info.get("output_node")))


def core_specs(path: Path = CORE_OBJECT_INFO) -> dict[str, NodeSpec]:
    """NodeSpecs of the core nodes in an ``/object_info`` dump (default: the bundled one), by node id."""
    data = json.loads(Path(path).read_text())
    return {name: spec_from_object_info(name, info) for name, info in data.items()}


def all_specs() -> dict[str, NodeSpec]:
    """Ours and the core subset; ours never share an id with core (a ``ValueError`` if they did: a bug of this
    pack, not something a user can cause)."""
    core = core_specs()
    clash = set(core) & set(NODES)
    if clash:
        raise ValueError(f"node ids clash with core: {sorted(clash)}")
    return {**core, **NODES}


def widget_values(spec: NodeSpec, values: list[Any]) -> tuple[dict[str, Any], list[str]]:
    """Map a UI node's positional ``widgets_values`` to names (skipping control_after_generate entries); returns
    (values by name, problems)."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    values = list(values)
    for widget in spec.widgets:
        if not values:
            problems.append(f"missing a value for widget {widget.name!r}")
            break
        out[widget.name] = values.pop(0)
        if widget.control_after_generate:
            if values and values[0] in CONTROL_VALUES:
                values.pop(0)
            else:
                problems.append(f"{widget.name}: expected a control_after_generate value after it")
        if widget.ui_extras:
            if len(values) < widget.ui_extras:
                problems.append(f"{widget.name}: expected {widget.ui_extras} UI values after it")
            del values[:widget.ui_extras]
    if values:
        problems.append(f"{len(values)} widget values more than the node's {len(spec.widgets)} widgets")
    return out, problems


def _types_match(out_type: str, in_type: str) -> bool:
    """ComfyUI's rule: types are comma-separated unions; a link is valid when they share one ("*" matches any)."""
    outs, ins = ({t.strip() for t in x.split(",")} for x in (out_type, in_type))
    return bool(outs & ins) or "*" in outs or "*" in ins


def model_folders(node_type: str, input_name: str, specs: dict[str, NodeSpec]) -> tuple[str, ...]:
    """The ComfyUI model folders a loader's file widget lists (ours: the spec's ``folders``; core's:
    :data:`CORE_MODEL_FOLDERS`); empty when unknown."""
    spec = specs.get(node_type)
    if spec is not None and any(i.name == input_name for i in spec.inputs) and spec.input(input_name).folders:
        return spec.input(input_name).folders
    return CORE_MODEL_FOLDERS.get(node_type, {}).get(input_name, ())


def model_widgets(node: dict[str, Any], spec: NodeSpec) -> dict[str, str]:
    """Widget name → file name for the widgets of a UI node that name a model file (a value ending in one of
    :data:`MODEL_EXTENSIONS`, the frontend's rule)."""
    named, _ = widget_values(spec, node.get("widgets_values", []))
    return {k: v for k, v in named.items() if isinstance(v, str) and v.lower().endswith(MODEL_EXTENSIONS)}


def _url_problem(name: str, url: Any) -> str | None:
    if not isinstance(url, str) or not url.startswith(DOWNLOAD_SOURCES):
        return f"url {url!r} is not a download from {' or '.join(DOWNLOAD_SOURCES)}"
    if url.startswith("https://huggingface.co/"):
        path = url.split("?", 1)[0]
        if "/resolve/" not in path:
            return f"url {url!r} is not a Hugging Face download link (…/resolve/<revision>/<file>)"
        if path.rsplit("/", 1)[1] != name:
            return f"url {url!r} downloads {path.rsplit('/', 1)[1]!r}, not {name!r}"
    return None


def model_metadata_problems(workflow: dict[str, Any], specs: dict[str, NodeSpec]) -> list[str]:
    """What keeps ComfyUI's missing-models dialog from offering a download for every model file a UI workflow names:
    a widget naming a model file (:func:`model_widgets`) without a ``properties.models`` entry of that name; an entry
    without ``url`` / ``directory``, with a folder the widget does not list (:func:`model_folders`), or with a URL
    that is not a download of that file from :data:`DOWNLOAD_SOURCES`; an entry no widget names; one file name with
    two different URLs or folders in the workflow. Nodes of unknown types are left to :func:`validate_ui`.
    Empty list = complete."""
    problems: list[str] = []
    seen: dict[str, tuple[Any, Any]] = {}
    for node in workflow.get("nodes", []):
        spec = specs.get(node.get("type"))
        if spec is None:
            continue
        where = f"node {node.get('id')} ({node['type']})"
        entries = (node.get("properties") or {}).get("models") or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            problems.append(f"{where}: properties.models must be a list of {{name, url, directory}} objects")
            continue
        by_name = {e.get("name"): e for e in entries}
        widgets = model_widgets(node, spec)
        for widget, file in widgets.items():
            entry = by_name.get(file)
            if entry is None:
                problems.append(f"{where}: {widget} names {file!r} but properties.models has no entry for it, so "
                                "the missing-models dialog cannot offer a download")
                continue
            folders = model_folders(node["type"], widget, specs)
            directory = entry.get("directory")
            if not isinstance(directory, str) or not directory:
                problems.append(f"{where}: the entry for {file!r} has no directory (the ComfyUI model folder)")
            elif folders and directory not in folders:
                problems.append(f"{where}: the entry for {file!r} says directory {directory!r}, but {widget} lists "
                                f"files from {', '.join(folders)}")
            issue = _url_problem(file, entry.get("url"))
            if issue:
                problems.append(f"{where}: the entry for {file!r}: {issue}")
            if seen.setdefault(file, (entry.get("url"), directory)) != (entry.get("url"), directory):
                problems.append(f"{where}: {file!r} has another url or directory than on an earlier node")
        for name in by_name:
            if name not in widgets.values():
                problems.append(f"{where}: properties.models lists {name!r}, which no widget of the node names")
    return problems


def validate_ui(workflow: dict[str, Any], specs: dict[str, NodeSpec], *,
                require_model_metadata: bool = False) -> list[str]:
    """Every problem of a UI-format workflow: unknown node types, broken or mistyped links, widget values that do not
    fit, required sockets left unconnected; with ``require_model_metadata`` also :func:`model_metadata_problems`
    (what the pack's example workflows must satisfy). Empty list = valid."""
    problems: list[str] = []
    nodes = {n["id"]: n for n in workflow.get("nodes", [])}
    if len(nodes) != len(workflow.get("nodes", [])):
        problems.append("duplicate node ids")
    links = {}
    for link in workflow.get("links", []):
        link_id, src, src_slot, dst, dst_slot, link_type = link
        links[link_id] = link
        where = f"link {link_id}"
        if src not in nodes or dst not in nodes:
            problems.append(f"{where}: connects missing node {src if src not in nodes else dst}")
            continue
        outputs, inputs = nodes[src].get("outputs", []), nodes[dst].get("inputs", [])
        if src_slot >= len(outputs) or link_id not in (outputs[src_slot].get("links") or []):
            problems.append(f"{where}: not listed on output {src_slot} of node {src}")
        if dst_slot >= len(inputs) or inputs[dst_slot].get("link") != link_id:
            problems.append(f"{where}: not listed on input {dst_slot} of node {dst}")
            continue
        src_spec, dst_spec = specs.get(nodes[src]["type"]), specs.get(nodes[dst]["type"])
        if src_spec is not None and src_slot < len(src_spec.outputs):
            out_type = src_spec.outputs[src_slot].type
            if not _types_match(out_type, link_type):
                problems.append(f"{where}: type {link_type} but node {src} output {src_slot} gives {out_type}")
        if dst_spec is not None:
            name = inputs[dst_slot]["name"]
            try:
                in_type = dst_spec.input(name).type
            except KeyError:
                problems.append(f"{where}: node {dst} has no input {name!r}")
                continue
            if in_type == "COMBO" or in_type in WIDGET_TYPES:
                continue  # a widget turned into a socket: primitives feed it
            if not _types_match(link_type, in_type):
                problems.append(f"{where}: type {link_type} into {name} of node {dst}, which takes {in_type}")
    for node_id, node in nodes.items():
        spec = specs.get(node["type"])
        where = f"node {node_id} ({node['type']})"
        if spec is None:
            problems.append(f"{where}: unknown node type")
            continue
        for i, inp in enumerate(node.get("inputs", [])):
            if inp.get("link") is not None and inp["link"] not in links:
                problems.append(f"{where}: input {i} points at missing link {inp['link']}")
        for out in node.get("outputs", []):
            for link_id in out.get("links") or []:
                if link_id not in links:
                    problems.append(f"{where}: output points at missing link {link_id}")
        named, widget_problems = widget_values(spec, node.get("widgets_values", []))
        problems += [f"{where}: {p}" for p in widget_problems]
        for name, value in named.items():
            issue = spec.input(name).check(value)
            if issue:
                problems.append(f"{where}: {issue}")
        if node.get("mode", 0) in BYPASSED_MODES:
            continue
        linked = {inp["name"] for inp in node.get("inputs", []) if inp.get("link") is not None}
        for inp in spec.inputs:
            if not inp.optional and not inp.is_widget and inp.name not in linked:
                problems.append(f"{where}: required input {inp.name!r} is not connected")
    if require_model_metadata:
        problems += model_metadata_problems(workflow, specs)
    return problems


def ui_to_api(workflow: dict[str, Any], specs: dict[str, NodeSpec]) -> dict[str, Any]:
    """A UI-format workflow → the API-format prompt the frontend would queue (links as ``[source id, slot]``), like
    the frontend's ``graphToPrompt``. Muted/bypassed nodes are left out (bypass rerouting is not supported: such
    graphs raise).

    Raises:
        ValueError: a node's widget values do not fit its definition, or an input comes from a bypassed node. A
            plain ``ValueError`` because this module imports nothing but :mod:`.specs` (the client uses it without
            torch); ``rs_ltxv.client.prompt.load_prompt`` re-raises it as ``ClientError`` for users.
        KeyError: a node type missing from ``specs`` or a dangling link (check with :func:`validate_ui` first).
    """
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {link[0]: link for link in workflow.get("links", [])}
    prompt: dict[str, Any] = {}
    for node_id, node in nodes.items():
        if node.get("mode", 0) in BYPASSED_MODES:
            continue
        spec = specs[node["type"]]
        named, problems = widget_values(spec, node.get("widgets_values", []))
        if problems:
            raise ValueError(f"node {node_id}: {'; '.join(problems)}. Fix the node's values in ComfyUI and save the "
                             "workflow again.")
        inputs: dict[str, Any] = dict(named)
        for inp in node.get("inputs", []):
            if inp.get("link") is None:
                continue
            _, src, slot, *_ = links[inp["link"]]
            if nodes[src].get("mode", 0) in BYPASSED_MODES:
                raise ValueError(f"node {node_id}: input {inp['name']} comes from a bypassed node; un-bypass it "
                                 "(Ctrl+B in ComfyUI) or connect the input around it.")
            inputs[inp["name"]] = [str(src), slot]
        prompt[str(node_id)] = {"class_type": node["type"], "inputs": inputs,
                                "_meta": {"title": node.get("title") or spec.display_name}}
    return prompt


def validate_api(prompt: dict[str, Any], specs: dict[str, NodeSpec]) -> list[str]:
    """Problems of an API-format prompt: unknown types, inputs that do not exist, links to missing nodes or outputs,
    values that do not fit, required inputs missing."""
    problems: list[str] = []
    for node_id, node in prompt.items():
        spec = specs.get(node.get("class_type"))
        where = f"node {node_id} ({node.get('class_type')})"
        if spec is None:
            problems.append(f"{where}: unknown node type")
            continue
        names = {i.name for i in spec.inputs}
        for name, value in node.get("inputs", {}).items():
            if name not in names:
                problems.append(f"{where}: unknown input {name!r}")
                continue
            if isinstance(value, list):
                src = prompt.get(str(value[0]))
                if src is None:
                    problems.append(f"{where}: {name} links to missing node {value[0]}")
                    continue
                src_spec = specs.get(src.get("class_type"))
                if src_spec is not None and not 0 <= value[1] < len(src_spec.outputs):
                    problems.append(f"{where}: {name} links to missing output {value[1]} of node {value[0]}")
                elif src_spec is not None and not spec.input(name).is_widget:
                    out_type, in_type = src_spec.outputs[value[1]].type, spec.input(name).type
                    if not _types_match(out_type, in_type):
                        problems.append(f"{where}: {name} takes {in_type} but gets {out_type}")
            else:
                issue = spec.input(name).check(value)
                if issue:
                    problems.append(f"{where}: {issue}")
        for inp in spec.inputs:
            if not inp.optional and inp.name not in node.get("inputs", {}):
                problems.append(f"{where}: required input {inp.name!r} is missing")
    return problems
