"""Jobs for the workers as plain data: dicts, lists, numbers, strings and CPU tensors.

ComfyUI imports a node pack under a module name made from its folder path, so the pack's dataclasses cannot be
pickled by reference into a Ray worker (which imports the pack as ``rs_ltxv``). The few dataclasses a stage job
carries are therefore written as ``{"__type__": name, "fields": {...}}`` (table :data:`WIRE_TYPES`) and rebuilt on
the other side with the worker's own classes; tensors travel as CPU tensors, dtypes by name, tuples tagged.

A stage job (:func:`encode_stage`) holds everything :func:`~rs_ltxv.ltx.pipeline.stage.run_stage` gets except the
model and the callbacks: the :class:`~rs_ltxv.ltx.pipeline.denoiser.Denoiser`'s contexts, guidance and run options,
and the :class:`~rs_ltxv.ltx.pipeline.stage.StageInputs` with its conditioning objects (``seed`` as a generator
state). A new conditioning kind travels once its class is listed in :data:`WIRE_TYPES`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ..ltx.errors import InputError
from ..ltx.pipeline.conditioning import (
    AudioPrefix,
    FrozenAudio,
    KeyframeGuide,
    ReferenceAudio,
    ReferenceVideo,
    ReplaceLatentFrames,
    TemporalRegionMask,
)
from ..ltx.pipeline.denoiser import Denoiser
from ..ltx.pipeline.guidance import GuidanceParams, SigmaBinnedGuidance
from ..ltx.pipeline.latents import VideoSize
from ..ltx.pipeline.sampling import SamplerOptions
from ..ltx.pipeline.stage import StageInputs
from ..ltx.text.processor import TextContexts
from ..ltx.transformer import LTXAVTransformer, RunOptions
from .recipe import LoadRecipe, LoraPatch

#: the dataclasses that may travel, by class name
WIRE_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    StageInputs, ReplaceLatentFrames, KeyframeGuide, AudioPrefix, FrozenAudio, ReferenceVideo, ReferenceAudio,
    TemporalRegionMask, GuidanceParams, SigmaBinnedGuidance, TextContexts, SamplerOptions, RunOptions, VideoSize,
    LoadRecipe, LoraPatch)}
#: dtypes that may travel, by name
DTYPES: dict[str, torch.dtype] = {str(d).removeprefix("torch."): d for d in (
    torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.float8_e4m3fn, torch.float8_e5m2)}


def _check(value: Any) -> None:
    """Refuse what would not mean the same in a worker."""
    if isinstance(value, RunOptions):
        if not isinstance(value.attention_mode, str):
            raise InputError("Multi-GPU runs need attention_mode as a name (sdpa, sage, flash, auto), not a "
                             f"callable ({value.attention_mode!r}).")
        if value.kernels:
            raise InputError("Multi-GPU runs set their own attention kernels; leave RunOptions.kernels empty.")


def encode(value: Any) -> Any:
    """``value`` as plain data: tensors → CPU tensors (same shape and dtype), dtypes → ``{"__dtype__": name}``,
    ``torch.Generator`` → ``{"__generator__": state}``, tuples → ``{"__tuple__": [...]}``, :data:`WIRE_TYPES`
    dataclasses → ``{"__type__": name, "fields": {...}}``, lists / dicts with str keys / numbers / str / None kept.

    Raises:
        InputError: ``value`` holds something else (a callable, a module, another class), or :class:`RunOptions`
            with a callable ``attention_mode`` or kernel overrides.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu").contiguous()
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).removeprefix("torch.")}
    if isinstance(value, torch.Generator):
        return {"__generator__": value.get_state()}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) and not k.startswith("__") for k in value):
        return {k: encode(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and type(value).__name__ in WIRE_TYPES:
        _check(value)
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return {"__type__": type(value).__name__, "fields": fields}
    raise InputError(f"Multi-GPU runs cannot send a {type(value).__name__} to the workers; only tensors, numbers, "
                     f"strings and {', '.join(WIRE_TYPES)} travel.")


def decode(value: Any, device: torch.device | str | None = None) -> Any:
    """The inverse of :func:`encode`, with this process's classes; tensors are moved to ``device`` (None: they stay
    on the CPU; a generator always stays a CPU generator).

    Raises:
        InputError: an unknown ``__type__`` or dtype name (a driver and a worker of different versions).
    """
    if isinstance(value, torch.Tensor):
        return value if device is None else value.to(device)
    if isinstance(value, list):
        return [decode(v, device) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(decode(v, device) for v in value["__tuple__"])
    if "__dtype__" in value:
        name = value["__dtype__"]
        if name not in DTYPES:
            raise InputError(f"dtype {name!r} cannot travel to the workers; use one of {', '.join(DTYPES)}.")
        return DTYPES[name]
    if "__generator__" in value:
        gen = torch.Generator()
        gen.set_state(value["__generator__"])
        return gen
    if "__type__" in value:
        cls = WIRE_TYPES.get(value["__type__"])
        if cls is None:
            raise InputError(f"Unknown job type {value['__type__']!r}: the driver and the workers run different "
                             "RS-LTXV versions; install the same one on every node.")
        return cls(**{k: decode(v, device) for k, v in value["fields"].items()})
    return {k: decode(v, device) for k, v in value.items()}


def encode_stage(denoise: Any, inputs: StageInputs) -> dict[str, Any]:
    """A stage job: ``denoise`` (a :class:`~rs_ltxv.ltx.pipeline.denoiser.Denoiser`; its model stays here) and the
    stage's :class:`~rs_ltxv.ltx.pipeline.stage.StageInputs` (its device stays here too), as plain data.

    Raises:
        InputError: ``denoise`` is not a ``Denoiser``; a value cannot travel (:func:`encode`), e.g. a conditioning
            kind that is not in :data:`WIRE_TYPES`.
    """
    if not isinstance(denoise, Denoiser):
        raise InputError(f"Multi-GPU runs need the pipeline's Denoiser, not a {type(denoise).__name__}.")
    denoiser = {"positive": denoise.positive, "negative": denoise.negative, "video_guidance": denoise.video_guidance,
                "audio_guidance": denoise.audio_guidance, "options": denoise.options,
                "identity_guidance": denoise.identity_guidance, "identity_start": denoise.identity_start,
                "identity_end": denoise.identity_end}
    return encode({"denoiser": denoiser, "inputs": dataclasses.replace(inputs, device="cpu")})


def decode_stage(job: dict[str, Any], model: LTXAVTransformer, device: torch.device | str
                 ) -> tuple[Denoiser, StageInputs]:
    """``(denoiser on model, stage inputs)`` of a job made by :func:`encode_stage`, with every tensor on ``device``
    and ``inputs.device = device`` (the noise generator, if any, stays a CPU generator, as the pipeline's is).

    Raises:
        InputError: see :func:`decode`.
    """
    data = decode(job, device)
    return Denoiser(model, **data["denoiser"]), dataclasses.replace(data["inputs"], device=device)
