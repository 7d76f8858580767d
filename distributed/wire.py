"""Jobs for the workers as plain data: dicts, lists, numbers, strings and CPU tensors.

ComfyUI imports a node pack under a module name made from its folder path, so the pack's dataclasses cannot be
pickled by reference into a Ray worker (which imports the pack as ``rs_ltxv``). The few dataclasses a stage job
carries are therefore written as ``{"__type__": name, "fields": {...}}`` (table :data:`WIRE_TYPES`) and rebuilt on
the other side with the worker's own classes; tensors travel as CPU tensors, dtypes by name, tuples tagged.

A stage job (:func:`encode_stage`) holds everything :func:`~rs_ltxv.ltx.pipeline.stage.run_stage` gets except the
model and the callbacks: the :class:`~rs_ltxv.ltx.pipeline.denoiser.Denoiser`'s contexts, guidance and run options,
the size, σ and the keyword arguments (``seed`` as a generator state).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ..ltx.errors import InputError
from ..ltx.pipeline.denoiser import Denoiser
from ..ltx.pipeline.guidance import GuidanceParams, SigmaBinnedGuidance
from ..ltx.pipeline.latents import VideoSize
from ..ltx.pipeline.sampling import SamplerOptions
from ..ltx.pipeline.stage import LatentCondition
from ..ltx.text.processor import TextContexts
from ..ltx.transformer import LTXAVTransformer, RunOptions
from .recipe import LoadRecipe, LoraPatch

#: the dataclasses that may travel, by class name
WIRE_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    LatentCondition, GuidanceParams, SigmaBinnedGuidance, TextContexts, SamplerOptions, RunOptions, VideoSize,
    LoadRecipe, LoraPatch)}
#: dtypes that may travel, by name
DTYPES: dict[str, torch.dtype] = {str(d).removeprefix("torch."): d for d in (
    torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.float8_e4m3fn, torch.float8_e5m2)}
#: keyword arguments of ``run_stage`` a job carries (the callbacks and the device stay with the caller)
STAGE_KWARGS = ("channels", "audio_channels", "seed", "sampler", "sampler_options", "conditions", "video_latent",
                "audio_latent", "with_audio", "audio_frozen", "audio_prefix", "noise_scale", "dtype")


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


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`, with this process's classes (tensors stay on the CPU).

    Raises:
        InputError: an unknown ``__type__`` or dtype name (a driver and a worker of different versions).
    """
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
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
        return cls(**{k: decode(v) for k, v in value["fields"].items()})
    return {k: decode(v) for k, v in value.items()}


def encode_stage(denoise: Any, size: VideoSize, sigmas: torch.Tensor, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A stage job: ``denoise`` (a :class:`~rs_ltxv.ltx.pipeline.denoiser.Denoiser`; its model stays here), ``size``,
    ``sigmas`` ``(n + 1,)`` and the keyword arguments of
    :func:`~rs_ltxv.ltx.pipeline.stage.run_stage` named in :data:`STAGE_KWARGS` (others are ignored), as plain data.

    Raises:
        InputError: ``denoise`` is not a ``Denoiser``; a value cannot travel (:func:`encode`).
    """
    if not isinstance(denoise, Denoiser):
        raise InputError(f"Multi-GPU runs need the pipeline's Denoiser, not a {type(denoise).__name__}.")
    denoiser = {"positive": denoise.positive, "negative": denoise.negative, "video_guidance": denoise.video_guidance,
                "audio_guidance": denoise.audio_guidance, "options": denoise.options}
    return encode({"denoiser": denoiser, "size": size, "sigmas": sigmas,
                   "kwargs": {k: v for k, v in kwargs.items() if k in STAGE_KWARGS}})


def decode_stage(job: dict[str, Any], model: LTXAVTransformer, device: torch.device | str
                 ) -> tuple[Denoiser, VideoSize, torch.Tensor, dict[str, Any]]:
    """``(denoiser on model, size, sigmas (n + 1,), run_stage keyword arguments)`` of a job made by
    :func:`encode_stage`, with every tensor moved to ``device`` and ``device=device`` added to the arguments (the
    generator, if any, stays a CPU generator, as the pipeline's is).

    Raises:
        InputError: see :func:`decode`.
    """
    data = decode(job)
    denoiser = Denoiser(model, **data["denoiser"])
    for name in ("positive", "negative"):
        ctx = getattr(denoiser, name)
        if ctx is not None:
            setattr(denoiser, name, TextContexts(*(t.to(device) for t in (ctx.video, ctx.audio, ctx.mask))))
    kwargs = data["kwargs"]
    for name in ("video_latent", "audio_latent"):
        if kwargs.get(name) is not None:
            kwargs[name] = kwargs[name].to(device)
    if kwargs.get("audio_prefix") is not None:
        latent, strength = kwargs["audio_prefix"]
        kwargs["audio_prefix"] = (latent.to(device), strength)
    kwargs["conditions"] = [dataclasses.replace(c, latent=c.latent.to(device)) for c in kwargs.get("conditions", ())]
    kwargs["device"] = device
    return denoiser, data["size"], data["sigmas"], kwargs
