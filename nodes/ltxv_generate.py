"""RS LTXV Generate: node inputs → :func:`rs_ltxv.ltx.pipeline.generate.generate` → LATENT / IMAGE / AUDIO.

:func:`run_generate` takes the hooks (progress, cancel, free) as arguments, so it runs the same inside ComfyUI
(hooks from :mod:`.comfy_env`) and in plain tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..ltx.errors import InputError
from ..ltx.pipeline.defaults import AUTO_FRAMES, planning_frames
from ..ltx.pipeline.generate import Result, generate
from ..ltx.pipeline.latents import VideoSize
from ..ltx.pipeline.protocols import ModelParts
from ..ltx.pipeline.request import Request
from ..ltx.plan.auto import AUTO_FFN_CHUNKS
from ..ltx.text.processor import TextContexts
from . import convert
from .outputs_used import require_consumed, specs

log = logging.getLogger(__name__)


@dataclass
class Hooks:
    """What a node run gets from its host: ``progress(done, total)`` and ``cancel() -> bool`` (or raises), handed
    to the pipeline (whose sampling loops see them as :class:`~rs_ltxv.ltx.pipeline.sampling.Callbacks`), plus
    ``free()`` before a run and ``load(patcher)`` to load a ComfyUI MODEL through ComfyUI's memory manager (None
    outside ComfyUI), ``preview(done, total, uint8 image (H, W, 3))`` for the live preview (None: off) and
    ``free_bytes(device)``, the device's free memory for ``ffn_chunks`` auto (None: unlimited, as on the CPU)."""

    progress: Callable[[int, int], None] | None = None
    cancel: Callable[[], bool] | None = None
    free: Callable[[], None] | None = None
    load: Callable[[Any], None] | None = None
    preview: Callable[[int, int, torch.Tensor], None] | None = None
    free_bytes: Callable[[torch.device], int] | None = None


def _ours_or_core(value: Any, ours: Callable[[Any], bool], from_core: str) -> Any:
    """Our loader's object as is; anything else through the core adapter ``core_interop.<from_core>`` (which raises
    a clear InputError for objects it cannot use)."""
    if ours(value):
        return value
    from . import core_interop

    return getattr(core_interop, from_core)(value)


def _is_video_vae(v: Any) -> bool:
    from ..ltx.pipeline.parts import VideoVAEAdapter

    return isinstance(v, VideoVAEAdapter)


def duration_head(spec: specs.NodeSpec, v: Mapping[str, Any], req: Request, version: object = None) -> Any:
    """The connected duration head (RS LTXV Duration Head Loader), or None. ``num_frames`` 0 with conditioning audio
    takes the audio's length (the library's ``frames_for_audio``) and needs no head; without audio it needs one, which
    only LTX-2.5 models (``version``: the MODEL's, None when unknown) have.

    Raises:
        InputError: ``num_frames`` is 0 without audio and no duration head is connected (the message says to set
            ``num_frames`` for LTX-2 / 2.3 models), or something else is connected there.
    """
    from ..ltx.pipeline.defaults import model_has_duration_head
    from ..ltx.pipeline.parts import DurationHeadAdapter

    head = v.get("duration_head")
    if head is not None and not isinstance(head, DurationHeadAdapter):
        raise InputError(f"{spec.display_name}: duration_head must come from "
                         f"{specs.DURATION_HEAD_LOADER.display_name}.")
    if req.frames != AUTO_FRAMES or req.audio is not None or head is not None:
        return head
    if version is not None and not model_has_duration_head(version):
        raise InputError(f"{spec.display_name}: num_frames 0 predicts the clip's length with the LTX-2.5 duration "
                         f"head, and this {getattr(version, 'display', version)} model has none: set num_frames "
                         "(8k + 1: 97, 121, …), or connect audio to take its length.")
    raise InputError(f"{spec.display_name}: num_frames 0 predicts the clip's length with the LTX-2.5 duration "
                     f"head; connect {specs.DURATION_HEAD_LOADER.display_name} (ltx-2.5-duration-head-bf16."
                     "safetensors in models/model_patches) to duration_head, or set num_frames (8k + 1).")


def _is_audio_vae(v: Any) -> bool:
    from ..ltx.audio.audio_vae import AudioVAE
    from .core_audio import CoreAudioVAE

    return isinstance(v, (AudioVAE, CoreAudioVAE))


def _is_upsampler(v: Any) -> bool:
    from ..ltx.upsampler import LatentUpsampler

    return isinstance(v, LatentUpsampler)


def _log_run_options(spec: specs.NodeSpec, ready: Any, req: Request, parallel: Any = None) -> None:
    """One console line saying which attention kernel and feed-forward chunking this run uses (and, with a
    ``parallel`` config, on how many Ray workers; the workers pick the kernel for their own device)."""
    from ..ops.attention import resolve_backend

    if parallel is not None:
        log.info("%s: %d Ray workers (%s), attention %s, feed-forward chunks %d", spec.display_name, parallel.gpus,
                 parallel.ray_address or "local", req.attention_mode, req.ffn_chunks)
        return
    backend = req.attention_mode
    if isinstance(backend, str):
        device = ready.compute_device or next(ready.transformer.parameters()).device
        backend = resolve_backend(backend, torch.device(device))
    name = backend if isinstance(backend, str) else getattr(backend, "__name__", "custom")
    note = " (masked or unsupported shapes fall back to sdpa)" if name in ("sage", "flash") else ""
    log.info("%s: attention %s%s, feed-forward chunks %d", spec.display_name, name, note, req.ffn_chunks)


def _free_bytes(hooks: Hooks, device: torch.device) -> int | None:
    """The device's free memory for ``ffn_chunks`` auto: ``hooks.free_bytes`` on a GPU, None (unlimited) on the CPU or
    without the hook."""
    return None if device.type == "cpu" or hooks.free_bytes is None else hooks.free_bytes(device)


def auto_ffn_chunks(spec: specs.NodeSpec, ready: Any, req: Request, hooks: Hooks, size: VideoSize) -> Request:
    """``req`` with ``ffn_chunks`` chosen by :func:`~rs_ltxv.ltx.plan.auto_settings` for the loaded model (its weights
    already on the device, so only what the run adds is planned) and the device's free memory."""
    from ..ltx.plan import auto_settings, format_bytes

    param = next(ready.transformer.parameters(), None)
    device = torch.device(ready.compute_device or (param.device if param is not None else "cpu"))
    dtype = ready.compute_dtype or (param.dtype if param is not None else torch.bfloat16)
    free = _free_bytes(hooks, device)
    auto = auto_settings(ready.transformer.config, size, free, weights_loaded=True, dtype=dtype,
                         upscale=req.upscale, images=len(req.images))
    if not auto.fits:
        log.warning("%s: ffn_chunks auto: %s×%s×%d frames may not fit the %s free on %s even with %d chunks; "
                    "trying anyway.", spec.display_name, size.width, size.height, size.frames, format_bytes(free),
                    device, auto.ffn_chunks)
    return replace(req, ffn_chunks=auto.ffn_chunks)


def latent_size(video: torch.Tensor, fps: float, frames: int | None = None) -> VideoSize:
    """The pixel size of a video latent ``(B, C, F, H, W)`` (``frames`` pixel frames instead of its own when given),
    for :func:`auto_ffn_chunks`."""
    b, _c, f, h, w = video.shape
    return VideoSize(frames or 8 * (f - 1) + 1, 32 * h, 32 * w, fps, b)


def model_parts(spec: specs.NodeSpec, v: Mapping[str, Any], req: Request,
                hooks: Hooks | None = None, size: VideoSize | None = None) -> tuple[ModelParts, Request]:
    """Check the connected objects (ours or core's) and assemble :class:`ModelParts`; messages name the node's
    inputs. The MODEL is loaded through ``hooks.load`` with the run's attention / feed-forward options as an object
    patch on a clone; the request comes back with the options the loaded model carries. A MODEL carrying the
    ``parallel`` patch (RS LTXV Multi-GPU (Ray)) is not loaded: Ray workers load its file and LoRA and run the
    denoising stages (``parts.stage_runner``, :func:`~.multi_gpu.parallel_parts`). ``ffn_chunks`` 0 (auto) is resolved
    by :func:`auto_ffn_chunks` for a video of ``size`` (default: the request's width × height × frames)."""
    from ..ltx.pipeline.parts import UpsamplerAdapter, vae_statistics
    from ..ltx.transformer import RunOptions
    from . import comfy_model

    hooks = hooks or Hooks()
    if v.get("vae") is None:
        raise InputError(f"{spec.display_name}: connect a video VAE (RS LTXV Video VAE Loader or core's).")
    vae = _ours_or_core(v["vae"], _is_video_vae, "video_vae_from_core")
    audio_vae = v.get("audio_vae")
    if audio_vae is not None:
        audio_vae = _ours_or_core(audio_vae, _is_audio_vae, "audio_vae_from_core")
    if req.audio is not None and audio_vae is None:
        raise InputError(f"{spec.display_name}: audio is connected but audio_vae is not; connect RS LTXV Audio "
                         "VAE Loader (or core's LTXV Audio VAE Loader) to encode it.")
    if req.reference_audio is not None and audio_vae is None:
        raise InputError(f"{spec.display_name}: reference_audio is connected but audio_vae is not; connect RS LTXV "
                         "Audio VAE Loader (or core's LTXV Audio VAE Loader) to encode it.")
    options = RunOptions(attention_mode=req.attention_mode, ffn_chunks=max(1, req.ffn_chunks))
    parallel = comfy_model.parallel_of(v.get("model"))  # RS LTXV Multi-GPU (Ray): the workers hold the weights
    if parallel is not None and v.get("sampler") is not None:
        raise InputError(f"{spec.display_name}: a connected SAMPLER runs in this process only, not on the "
                         f"{specs.MULTI_GPU.display_name} workers. Disconnect it (pick sampler_name instead) or set "
                         "gpus to 1.")
    ready = comfy_model.prepare(v.get("model"), options, load=hooks.load if parallel is None else None,
                                what=spec.display_name)
    req = replace(req, attention_mode=ready.options.attention_mode, ffn_chunks=ready.options.ffn_chunks)
    head = duration_head(spec, v, req, getattr(getattr(ready.transformer, "config", None), "version", None))
    if parallel is None and int(v.get("ffn_chunks") or AUTO_FFN_CHUNKS) == AUTO_FFN_CHUNKS:
        req = auto_ffn_chunks(spec, ready, req, hooks, size or VideoSize(planning_frames(req.frames, req.fps),
                                                                        req.height, req.width, req.fps))
    _log_run_options(spec, ready, req, parallel)
    parts = ModelParts(ready.transformer, video_vae=vae, audio_vae=audio_vae, distilled=ready.distilled,
                       compute_dtype=ready.compute_dtype, compute_device=ready.compute_device, duration_head=head)
    if parallel is not None:
        from .multi_gpu import parallel_parts

        parts.compute_dtype = getattr(v["model"], "model", v["model"]).get_dtype()
        parts = parallel_parts(parts, v["model"], parallel, spec.display_name)
    if req.upscale:
        upsampler = v.get("upscale_model")
        if upsampler is None:
            raise InputError(f"{spec.display_name}: upscale is on but upscale_model is not connected; connect "
                             f"{specs.UPSCALE_LOADER.display_name} (or core's Load Latent Upscale Model) or turn "
                             "upscale off.")
        upsampler = _ours_or_core(upsampler, _is_upsampler, "upsampler_from_core")
        parts.upsampler = UpsamplerAdapter(upsampler, *vae_statistics(vae.vae))
    return parts, req


def outputs(result: Result, fps: float) -> tuple[dict, dict, torch.Tensor, dict]:
    """Result → (video LATENT, audio LATENT, IMAGE, AUDIO) with placeholders for what was not decoded."""
    images = convert.frames_to_image(result.frames) if result.frames is not None else convert.blank_image()
    return (convert.video_latent_dict(result.video_latent, fps), convert.audio_latent_dict(result.audio_latent),
            images, convert.waveform_to_audio(result.waveform, result.sample_rate))


def _context(cond: Any, what: str, model: Any) -> TextContexts:
    """Ours (RS LTXV Text Encode) or core's (CLIP Text Encode with the LTXV text encoder) CONDITIONING."""
    if cond is None:
        raise InputError(f"{what}: connect a CONDITIONING (RS LTXV Text Encode or core's CLIP Text Encode).")
    try:
        ours = isinstance(cond[0][1], Mapping) and convert.AUDIO_KEY in cond[0][1]
    except (IndexError, KeyError, TypeError):
        raise InputError(f"{what}: expected CONDITIONING.") from None
    if ours:
        return convert.conditioning_to_contexts(cond, what)
    from .core_conditioning import contexts_from_core

    return contexts_from_core(cond, model, what)


def contexts(v: Mapping[str, Any]) -> tuple[TextContexts, TextContexts]:
    return (_context(v.get("positive"), "positive", v.get("model")),
            _context(v.get("negative"), "negative", v.get("model")))


def run_generate(hooks: Hooks | None = None, **values: Any) -> tuple:
    hooks = hooks or Hooks()
    spec = specs.GENERATE
    req = require_consumed(spec, convert.build_request(spec, values), values)
    if hooks.free:
        hooks.free()
    parts, req = model_parts(spec, values, req, hooks)
    ctx = contexts(values)
    with torch.inference_mode():
        result = generate(parts, req, contexts=ctx, progress=hooks.progress, cancel=hooks.cancel,
                          preview=hooks.preview)
    return outputs(result, req.fps)
