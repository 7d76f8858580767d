"""Decode what the graph consumes: RS LTXV Generate / Extend decode their IMAGE and AUDIO outputs when another node
uses them, even with ``decode`` off, and say what is missing instead of handing out a black frame or silence.

ComfyUI gives a node its prompt graph and id as hidden inputs (``PROMPT``, ``UNIQUE_ID``); an input of another node
that links to us reads ``[our id, output index]``. Without a graph (library calls, tests) nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..ltx.errors import InputError
from ..ltx.pipeline.request import Request
from . import specs


def consumed_outputs(graph: Mapping[str, Any] | None, node_id: Any) -> frozenset[int] | None:
    """Indices of this node's outputs that some node of ``graph`` (an API-format prompt) links to; None when the
    graph or the id is unknown."""
    if not isinstance(graph, Mapping) or node_id is None:
        return None
    used = set()
    for node in graph.values():
        inputs = node.get("inputs", {}) if isinstance(node, Mapping) else {}
        for value in inputs.values():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) == str(node_id):
                used.add(int(value[1]))
    return frozenset(used)


def _index(spec: specs.NodeSpec, name: str) -> int:
    return [o.name for o in spec.outputs].index(name)


def require_consumed(spec: specs.NodeSpec, req: Request, values: Mapping[str, Any]) -> Request:
    """``req`` with ``decode`` on when IMAGE or AUDIO is consumed.

    Raises:
        InputError: a consumed output cannot be produced (no ``vae`` for IMAGE; no ``audio_vae``, or for Extend /
            Retake no ``audio_latent``, for AUDIO), naming the input to connect or the output to disconnect.
    """
    used = consumed_outputs(values.get("prompt_graph"), values.get("node_id"))
    if not used:
        return req
    name = spec.display_name
    wants_images, wants_audio = _index(spec, "images") in used, _index(spec, "audio") in used
    if wants_images and values.get("vae") is None:
        raise InputError(f"{name}: the images output is connected, so the video must be decoded: connect vae "
                         f"({specs.VAE_LOADER.display_name} or core's Load VAE), or disconnect images.")
    if wants_audio:
        if values.get("audio_vae") is None:
            raise InputError(f"{name}: the audio output is connected, so the sound must be decoded: connect "
                             f"audio_vae ({specs.AUDIO_VAE_LOADER.display_name} or core's LTXV Audio VAE Loader), "
                             "or disconnect audio.")
        if spec.id in (specs.EXTEND.id, specs.RETAKE.id) and values.get("audio_latent") is None:
            raise InputError(f"{name}: the audio output is connected but the clip has no audio_latent; connect the "
                             "audio_latent output of the node that made the clip, or disconnect audio.")
        if values.get("vae") is None:
            raise InputError(f"{name}: decoding the audio output also decodes the video: connect vae.")
    return replace(req, decode=True) if (wants_images or wants_audio) and not req.decode else req
