"""Pure conversions between ComfyUI's data conventions and the library (no ComfyUI import, plain-pytest testable).

ComfyUI conventions: IMAGE ``(B, H, W, C)`` float 0..1; AUDIO ``{"waveform": (B, C, T), "sample_rate": int}``;
LATENT ``{"samples": tensor, ...}``; CONDITIONING ``[[tensor, dict], ...]``; SAMPLER (core's ``KSAMPLER``)
``sampler_function`` + ``extra_options``. Node inputs arrive as keyword arguments named as in :mod:`.specs`;
:func:`build_request` turns them into a library :class:`Request`. The only ComfyUI import is the optional, lazy one in
:func:`core_flow_sampling`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..ltx.errors import InputError
from ..ltx.pipeline.checks import check_number
from ..ltx.pipeline.defaults import AUTO_FRAMES
from ..ltx.pipeline.guidance import GuidanceParams
from ..ltx.pipeline.kdiffusion import ExternalSampler, FlowSampling
from ..ltx.pipeline.request import ImageGuide, Request
from ..ltx.text.processor import TextContexts
from . import specs
from .ic_lora import reference_guides

AUDIO_KEY = "rs_ltxv_audio_context"
MASK_KEY = "rs_ltxv_mask"
VIDEO_TEMPORAL = 8  # pixel frames per latent frame (after the first)

#: attention_mode widget → the library's attention_mode (an ops.attention backend name)
ATTENTION = {"auto": "auto", "default": "sdpa", "sage": "sage", "flash": "flash"}


# ------------------------------------------------------------------------------------------------------- images

def image_to_uint8(image: torch.Tensor, what: str = "image") -> np.ndarray:
    """IMAGE ``(B, H, W, C)`` 0..1 → uint8 ``(H, W, 3)`` of its first picture (a guide is one picture)."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[-1] < 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"{what}: expected an IMAGE (batch, height, width, 3); got {shape}.")
    first = image[0, :, :, :3].detach().float().cpu().clamp(0, 1)
    return (first * 255.0).round().to(torch.uint8).numpy()


def frames_to_image(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames ``(B, F, H, W, 3)`` → IMAGE ``(B·F, H, W, 3)`` float32 0..1 (one picture per frame)."""
    return frames.reshape(-1, *frames.shape[2:]).float().div_(255.0)


def blank_image(height: int = 64, width: int = 64) -> torch.Tensor:
    """One black frame: the IMAGE output when nothing was decoded."""
    return torch.zeros(1, height, width, 3)


# -------------------------------------------------------------------------------------------------------- audio

def audio_to_waveform(audio: Mapping[str, Any]) -> tuple[torch.Tensor, int]:
    """AUDIO → (waveform ``(C, T)`` float32 of the first batch item, sample rate)."""
    try:
        wave, rate = audio["waveform"], int(audio["sample_rate"])
    except (KeyError, TypeError):
        raise InputError("audio: expected an AUDIO input ({'waveform': (B, C, T), 'sample_rate': int}).") from None
    if not isinstance(wave, torch.Tensor) or wave.ndim != 3 or wave.shape[-1] == 0:
        raise InputError(f"audio: the waveform must be (batch, channels, samples); got "
                         f"{tuple(wave.shape) if isinstance(wave, torch.Tensor) else type(wave).__name__}.")
    return wave[0].float(), rate


def waveform_to_audio(waveform: torch.Tensor | None, sample_rate: int | None) -> dict[str, Any]:
    """Library waveform ``(B, C, S)`` → AUDIO; None → one second of stereo silence at 48 kHz."""
    if waveform is None:
        return {"waveform": torch.zeros(1, 2, 48000), "sample_rate": 48000}
    return {"waveform": waveform.detach().float().cpu(), "sample_rate": int(sample_rate)}


# ------------------------------------------------------------------------------------------------------ latents

def video_latent_dict(latent: torch.Tensor, fps: float) -> dict[str, Any]:
    """Video latent ``(B, 128, F, H/32, W/32)`` → LATENT (``frame_rate`` kept for Extend)."""
    return {"samples": latent.detach(), "frame_rate": float(fps)}


def frame_rate_of(latent: Any) -> float | None:
    """The ``frame_rate`` a LATENT carries (ours: always; core's video latents: none), in frames per second.

    Raises:
        InputError: the value is not a positive finite number.
    """
    if not isinstance(latent, Mapping) or latent.get("frame_rate") is None:
        return None
    check_number("latent frame_rate", latent["frame_rate"], 0.0, 1000.0, lo_open=True)
    return float(latent["frame_rate"])


def audio_latent_dict(latent: torch.Tensor | None) -> dict[str, Any]:
    """Audio latent ``(B, 8, T, 16)`` → LATENT (``type`` "audio"); None → an empty ``(1, 8, 0, 16)`` latent."""
    samples = latent.detach() if latent is not None else torch.zeros(1, 8, 0, 16)
    return {"samples": samples, "type": "audio"}


def video_latent_from(latent: Mapping[str, Any], what: str = "latent") -> torch.Tensor:
    samples = latent.get("samples") if isinstance(latent, Mapping) else None
    if not isinstance(samples, torch.Tensor) or samples.ndim != 5:
        raise InputError(f"{what}: expected a video LATENT with samples (batch, 128, frames, height, width); got "
                         f"{tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__}.")
    return samples


def audio_latent_from(latent: Mapping[str, Any] | None) -> torch.Tensor | None:
    """AUDIO LATENT → ``(B, 8, T, 16)``; None or an empty latent → None."""
    if latent is None:
        return None
    samples = latent.get("samples") if isinstance(latent, Mapping) else None
    if not isinstance(samples, torch.Tensor) or samples.ndim != 4:
        raise InputError("audio_latent: expected an audio LATENT with samples (batch, 8, frames, 16).")
    return samples if samples.shape[2] > 0 else None


# ------------------------------------------------------------------------------------------------- conditioning

def contexts_to_conditioning(ctx: TextContexts) -> list[list[Any]]:
    """TextContexts → CONDITIONING ``[[video (B, S, D_v), {audio context, mask}]]``."""
    return [[ctx.video, {AUDIO_KEY: ctx.audio, MASK_KEY: ctx.mask}]]


def conditioning_to_contexts(cond: Any, what: str) -> TextContexts:
    """CONDITIONING from RS LTXV Text Encode → TextContexts (the first entry)."""
    try:
        video, extra = cond[0][0], cond[0][1]
    except (IndexError, KeyError, TypeError):
        raise InputError(f"{what}: expected CONDITIONING.") from None
    if not isinstance(extra, Mapping) or AUDIO_KEY not in extra:
        raise InputError(f"{what}: this CONDITIONING was not made by RS LTXV Text Encode. Core text encoders "
                         "(CLIP Text Encode) are not supported yet; encode the prompt with RS LTXV Text Encode.")
    return TextContexts(video=video, audio=extra[AUDIO_KEY], mask=extra[MASK_KEY])


# ------------------------------------------------------------------------------------------- SAMPLER / GUIDER

#: why a connected GUIDER is refused (``{node}``: the node's display name)
GUIDER_REFUSAL = (
    "{node}: a connected GUIDER cannot drive RS LTXV. A GUIDER carries core's model and conditionings and runs "
    "core's own sampling loop, while RS LTXV samples its own port of the model with its own multimodal guidance "
    "(video CFG, STG, audio CFG, audio↔video modality guidance, rescale). Disconnect the GUIDER and set cfg, "
    "stg_scale, stg_blocks, audio_cfg, modality_scale and rescale on this node; a SAMPLER and SIGMAS can stay "
    "connected."
)

#: the SAMPLERs that work, for messages
WORKING_SAMPLERS = ("KSamplerSelect (euler, euler_ancestral, heun, dpmpp_2m, dpmpp_2m_sde, lms, …), "
                    "SamplerEulerAncestral, SamplerDPMPP_2M_SDE, SamplerDPMPP_SDE and other nodes that wrap a "
                    "k-diffusion sampler function")


@functools.cache
def _core_flow_class() -> type | None:
    try:
        import comfy.model_sampling as core
    except ImportError:
        return None
    return type("RSLTXVCoreFlowSampling", (FlowSampling, core.CONST), {})


def core_flow_sampling() -> FlowSampling | None:
    """A :class:`FlowSampling` that is also core's ``comfy.model_sampling.CONST`` (core's samplers then pick their
    rectified-flow variants and flow log-SNR); None when ComfyUI is not importable (the library default applies)."""
    cls = _core_flow_class()
    return None if cls is None else cls()


def _sample_owner(obj: Any) -> str | None:
    """Name of the class that defines ``obj.sample`` (None when there is none)."""
    return next((c.__name__ for c in type(obj).__mro__ if "sample" in vars(c)), None)


def sampler_from_comfy(sampler: Any, node: str = "RS LTXV") -> ExternalSampler:
    """A SAMPLER (core's ``KSAMPLER`` or anything with ``sampler_function`` + ``extra_options``) →
    :class:`ExternalSampler`; a SAMPLER that runs its own ``sample()`` loop → :class:`InputError`."""
    fn = getattr(sampler, "sampler_function", None)
    owner = _sample_owner(sampler)
    if not callable(fn) or owner not in (None, "KSAMPLER"):
        kind = type(sampler).__name__
        why = (f"it overrides sample() ({owner}), which drives core's model directly" if owner
               else "it has no sampler_function")
        raise InputError(f"{node}: this SAMPLER ({kind}) cannot drive RS LTXV: {why}. Samplers that work: "
                         f"{WORKING_SAMPLERS}. Or disconnect it and pick sampler_name.")
    options = dict(getattr(sampler, "extra_options", None) or {})
    name = getattr(fn, "__name__", "sampler").removeprefix("sample_")
    return ExternalSampler(fn, options, name, core_flow_sampling())


# ------------------------------------------------------------------------------------------------------ request

def parse_blocks(text: str) -> tuple[int, ...]:
    """``"28"`` / ``"20, 21"`` → block indices; empty → ()."""
    out = []
    for part in str(text).replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise InputError(f"stg_blocks: {part!r} is not a block number; write e.g. '28' or '20, 21'.")
        out.append(int(part))
    return tuple(out)


def middle_frame(num_frames: int) -> int:
    """The pixel frame of the middle guide: the middle, rounded down to a latent-frame boundary."""
    return ((num_frames - 1) // 2) // VIDEO_TEMPORAL * VIDEO_TEMPORAL


def _with_defaults(spec: specs.NodeSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    merged = spec.defaults
    merged.update({k: v for k, v in values.items() if v is not None})
    return merged


def _guides(v: Mapping[str, Any], slots: tuple[tuple[str, int], ...]) -> tuple[ImageGuide, ...]:
    out = []
    for name, frame in slots:
        image = v.get(f"{name}_image")
        if image is not None:
            out.append(ImageGuide(image_to_uint8(image, f"{name}_image"), frame=frame,
                                  strength=float(v["image_strength"]), attention=float(v[f"{name}_strength"])))
    return tuple(out)


def build_request(spec: specs.NodeSpec, values: Mapping[str, Any]) -> Request:
    """Node keyword arguments (missing optional ones take the spec defaults) → :class:`Request`.

    A connected SAMPLER becomes an :class:`ExternalSampler` (used in every pass); a GUIDER raises
    :class:`InputError` (:data:`GUIDER_REFUSAL`)."""
    v = _with_defaults(spec, values)
    if v.get("guider") is not None:
        raise InputError(GUIDER_REFUSAL.format(node=spec.display_name))
    sampler = v.get("sampler")
    sampler = str(v["sampler_name"]) if sampler is None else sampler_from_comfy(sampler, spec.display_name)
    blocks = parse_blocks(v["stg_blocks"])
    shared = dict(stg=float(v["stg_scale"]), stg_blocks=blocks, rescale=float(v["rescale"]),
                  modality=float(v["modality_scale"]))
    sigmas = v.get("sigmas")
    if sigmas is not None:
        sigmas = tuple(float(s) for s in torch.as_tensor(sigmas).flatten())
        if len(sigmas) < 2:
            raise InputError("sigmas: need at least two noise levels (start and end).")
    if spec.id == specs.GENERATE.id:
        frames = int(v["num_frames"])
        if frames == AUTO_FRAMES and v.get("middle_image") is not None:
            raise InputError("middle_image sits at the middle frame, which num_frames 0 (length from the duration "
                             "head) does not fix; set num_frames or use first_image / last_image.")
        slots = (("first", 0), ("middle", middle_frame(frames)), ("last", -1))
        size = dict(width=int(v["width"]), height=int(v["height"]), frames=frames)
    else:
        slots = (("last", -1),)
        size = {}
    audio = v.get("audio")
    wave, rate = audio_to_waveform(audio) if audio is not None else (None, None)
    voice = v.get("reference_audio")  # ID-LoRA (Generate, Extend, Retake)
    voice_wave, voice_rate = audio_to_waveform(voice) if voice is not None else (None, None)
    return Request(
        **size,
        fps=float(v["frame_rate"]),
        seed=int(v["seed"]),
        steps=int(v["steps"]),
        sigmas=sigmas,
        max_shift=float(v["max_shift"]),
        base_shift=float(v["base_shift"]),
        sampler=sampler,
        video_guidance=GuidanceParams(cfg=float(v["cfg"]), **shared),
        audio_guidance=GuidanceParams(cfg=float(v["audio_cfg"]), **shared),
        images=_guides(v, slots),
        reference_videos=reference_guides(v),
        image_crf=None if v.get("crf") is None else int(v["crf"]),  # Retake has no crf: the model's
        audio=wave,
        audio_sample_rate=rate,
        reference_audio=voice_wave,
        reference_audio_sample_rate=voice_rate,
        identity_guidance=float(v.get("identity_guidance", Request.identity_guidance)),
        identity_guidance_start=float(v.get("identity_guidance_start", Request.identity_guidance_start)),
        identity_guidance_end=float(v.get("identity_guidance_end", Request.identity_guidance_end)),
        upscale=bool(v.get("upscale", False)),
        upscale_steps=int(v.get("upscale_steps", 0)),
        upscale_guidance=GuidanceParams(cfg=float(v.get("upscale_cfg", 1.0))),
        upscale_denoise=float(v.get("upscale_denoise", Request.upscale_denoise)),
        decode=bool(v["decode"]),
        attention_mode=ATTENTION[str(v["attention_mode"])],
        ffn_chunks=max(1, int(v["ffn_chunks"])),
        free_between_stages=True,
    )


# --------------------------------------------------------------------------------------------------- validation

#: the widgets whose rules ComfyUI's own validation cannot see (8k + 1 frames, multiples of 32 / 64 depending on
#: ``upscale``, the STG block list). ComfyUI reports a failed ``VALIDATE_INPUTS`` once per input it receives, so the
#: list is kept to these; every other widget keeps ComfyUI's range / choice checks, and the whole request is checked
#: again (finite numbers included) when the node runs, before the sampler starts.
CHECKED_WIDGETS = {
    specs.GENERATE.id: ("width", "height", "num_frames", "upscale", "stg_blocks"),
    specs.EXTEND.id: ("num_new_frames", "overlap_frames", "stg_blocks"),
    specs.RETAKE.id: ("stg_blocks",),
}


def checked_widgets(spec: specs.NodeSpec) -> tuple[str, ...]:
    """The widgets :func:`validate_widgets` checks before a prompt runs (:data:`CHECKED_WIDGETS`)."""
    return CHECKED_WIDGETS.get(spec.id, ())


def validate_widgets(spec: specs.NodeSpec, values: Mapping[str, Any]) -> str | None:
    """Why the widget ``values`` of a Generate / Extend node cannot run, or None: each widget's range, step and
    choices, then every rule of :class:`~rs_ltxv.ltx.pipeline.request.Request` (8k+1 frames, multiples of 32/64,
    finite guidance, seed range, STG block syntax). Linked inputs arrive as None and are not judged here.

    Mirrors what ComfyUI's ``VALIDATE_INPUTS`` expects: a message string, so an API prompt with ``num_frames = 100``
    is refused by ``/prompt`` before any loader runs."""
    given = {k: v for k, v in values.items() if v is not None}
    for name, value in given.items():
        problem = spec.input(name).check(value)
        if problem is not None:
            return problem
    try:
        build_request(spec, given)
    except InputError as exc:
        return str(exc)
    return None
