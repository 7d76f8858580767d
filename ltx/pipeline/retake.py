"""Retake: regenerate a time range of an existing clip — its video, its sound or both — and keep the rest exactly
(``ltx_pipelines.retake.RetakePipeline``, one denoising stage over the clip's own latents).

The clip's latents start the stage; :class:`~.conditioning.time_range.TemporalRegionMask` sets the denoise mask to 1
on the latent frames whose time span overlaps ``[start_time, end_time)`` and to 0 elsewhere, so the sampler only
changes the range while the model sees the whole clip. Afterwards every latent frame outside the range is copied
back from the input (in the input's dtype), so it is bit-identical to what was given even when the model runs in
another dtype or a sampler adds noise. Decoding the result decodes the whole clip; pixels just outside the range may
still change a little (the video VAE's decoder sees neighbouring latent frames).

The 2× upscale pass does not apply: a retake runs at the clip's own size (retake the full-size clip).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..config import TransformerConfig
from ..errors import InputError
from ..text.processor import TextContexts
from ..tokens import VIDEO_SCALE
from .common import Result
from .conditioning import Conditioning
from .conditioning.time_range import TemporalRegionMask, audio_frame_region, video_frame_region
from .defaults import defaults_for_parts, resolve_request
from .id_lora import reference_audio_conditions, reference_audio_latent
from .latents import VideoSize
from .preview import PreviewHook
from .protocols import ModelParts
from .request import Request
from .run_setup import begin_run, finish_run
from .two_stage import run_stages


def clip_seconds(video_frames: int, fps: float) -> float:
    """Duration in seconds of a clip of ``video_frames`` latent frames (``8·(F' − 1) + 1`` pixel frames) at ``fps``."""
    return ((video_frames - 1) * VIDEO_SCALE[0] + 1) / fps


def check_retake(video_latent: torch.Tensor, audio_latent: torch.Tensor | None, fps: float, start_time: float,
                 end_time: float, *, regenerate_video: bool = True, regenerate_audio: bool = True) -> None:
    """Everything a retake can check from its inputs alone (no model): latent shapes (video ``(B, C, F', H', W')``,
    audio ``(B, C_a, T, M)`` with the same batch), ``0 ≤ start_time < end_time ≤`` the clip's duration (seconds, at
    ``fps``), and something to regenerate.

    Raises:
        InputError: naming the problem and what to give instead.
    """
    if not isinstance(video_latent, torch.Tensor) or video_latent.ndim != 5 or not video_latent.is_floating_point():
        shape = tuple(video_latent.shape) if isinstance(video_latent, torch.Tensor) else type(video_latent).__name__
        raise InputError(f"retake: the video latent must be a float tensor (batch, 128, frames, height, width); got "
                         f"{shape}. Pass the latent of a generated clip.")
    if audio_latent is not None and (audio_latent.ndim != 4 or not audio_latent.is_floating_point()
                                     or audio_latent.shape[0] != video_latent.shape[0]):
        raise InputError(f"retake: the audio latent must be a float tensor (batch, 8, frames, 16) with the video's "
                         f"batch {video_latent.shape[0]}; got {tuple(audio_latent.shape)}. Pass the audio latent of "
                         "the same clip, or none.")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise InputError(f"retake: fps must be a positive number; got {fps!r}.")
    duration = clip_seconds(video_latent.shape[2], fps)
    for name, value in (("start_time", start_time), ("end_time", end_time)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"retake: {name} must be a finite number of seconds; got {value!r}.")
    if start_time < 0 or start_time >= duration:
        raise InputError(f"retake: start_time {start_time:g} s is outside the clip, which is {duration:g} s long "
                         f"({video_latent.shape[2]} latent frames at {fps:g} fps); give a start from 0 to below "
                         f"{duration:g}.")
    if end_time <= start_time:
        raise InputError(f"retake: end_time {end_time:g} s must be after start_time {start_time:g} s.")
    if end_time > duration:
        raise InputError(f"retake: end_time {end_time:g} s runs past the end of the clip ({duration:g} s at "
                         f"{fps:g} fps); give at most {duration:g}.")
    if not regenerate_video and not (regenerate_audio and audio_latent is not None):
        what = "the clip has no audio latent" if audio_latent is None else "regenerate_audio is off"
        raise InputError(f"retake: nothing to regenerate: regenerate_video is off and {what}. Turn one on.")


def _check_request(req: Request) -> None:
    """The request's settings a retake cannot use.

    Raises:
        InputError: upscale on, image guides, IC-LoRA reference videos or conditioning audio given.
    """
    if req.upscale:
        raise InputError("retake runs at the clip's own size: turn upscale off (retake the full-size clip; to "
                         "upscale, retake first, then run the 2× pass on the result).")
    if req.images:
        raise InputError("retake does not take image guides: the clip outside the range is the guide. Drop them.")
    if req.reference_videos:
        raise InputError("retake does not take IC-LoRA reference videos (they guide whole generations); drop them, "
                         "or generate the clip again with the reference.")
    if req.audio is not None:
        raise InputError("retake does not take conditioning audio: the clip's own audio latent is kept or "
                         "regenerated. Drop it.")


def check_latent_channels(config: TransformerConfig, video_latent: torch.Tensor, audio_latent: torch.Tensor | None
                          ) -> None:
    """The latents fit the transformer's latent channels (``config.in_channels``, ``config.audio_in_channels`` =
    audio channels × mel bins); no weights needed.

    Raises:
        InputError: they were made by another model.
    """
    if video_latent.shape[1] != config.in_channels:
        raise InputError(f"retake: the video latent has {video_latent.shape[1]} channels but the model expects "
                         f"{config.in_channels}; retake a clip made with this model family.")
    if audio_latent is not None and audio_latent.shape[1] * audio_latent.shape[3] != config.audio_in_channels:
        raise InputError(f"retake: the audio latent {tuple(audio_latent.shape)} does not fit the model's "
                         f"{config.audio_in_channels} audio channels; pass the audio latent of the same clip.")


def keep_outside(original: torch.Tensor, new: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """``original`` (its dtype, ``new``'s device) with the frames of dimension 2 where ``region`` (bool, one per
    frame) is True taken from ``new``: latents outside the range stay bit-identical."""
    out = original.to(device=new.device, copy=True)
    index = region.nonzero().flatten().to(new.device)
    out[:, :, index] = new[:, :, index].to(out.dtype)
    return out


def retake(parts: ModelParts, req: Request, video_latent: torch.Tensor, audio_latent: torch.Tensor | None, *,
           start_time: float, end_time: float, regenerate_video: bool = True, regenerate_audio: bool = True,
           contexts: tuple[TextContexts, TextContexts | None] | None = None,
           progress: Callable[[int, int], None] | None = None, cancel: Callable[[], bool] | None = None,
           preview: PreviewHook | None = None) -> Result:
    """Regenerate ``[start_time, end_time)`` seconds of a clip from ``req.prompt`` and keep the rest exactly.

    ``video_latent`` ``(B, 128, F', H', W')`` and ``audio_latent`` ``(B, 8, T, 16)`` (None: a clip without sound,
    video only) are the clip at ``req.fps`` frames per second (its size comes from the latent; ``req.frames`` /
    ``width`` / ``height`` are not used). ``regenerate_video`` / ``regenerate_audio`` choose the streams; a stream
    not regenerated is returned as given; ``req.reference_audio`` (ID-LoRA voice) guides the regenerated sound as in
    :func:`~.generate.generate`. One stage over ``req.steps`` (or ``req.sigmas``) with the request's
    sampler, guidance and seed. Returns latents of the input shapes and dtypes — every latent frame outside the
    range bit-identical to the input — and, with ``req.decode``, the whole clip decoded. ``progress`` /
    ``cancel`` / ``preview`` as in :func:`~.generate.generate`. Mirrors ``ltx_pipelines.retake.RetakePipeline``
    (which encodes a video file first; here the clip arrives as latents).

    Raises:
        InputError: before any model call: bad latents or range (:func:`check_retake`), upscale / image guides /
            reference videos / conditioning audio in ``req``, latents of another model, a missing part or a setting
            that does not fit.
        NonFiniteError: the model's prediction became NaN or infinite at some step.
        Cancelled: ``cancel()`` returned True.
    """
    check_retake(video_latent, audio_latent, req.fps, start_time, end_time, regenerate_video=regenerate_video,
                 regenerate_audio=regenerate_audio)
    _check_request(req)
    check_latent_channels(parts.transformer.config, video_latent, audio_latent)
    b, _c, f, h, w = video_latent.shape
    size = VideoSize((f - 1) * VIDEO_SCALE[0] + 1, h * VIDEO_SCALE[1], w * VIDEO_SCALE[2], req.fps, batch=b)
    req = resolve_request(req, defaults_for_parts(parts))  # unset settings: the model's (.defaults)
    run = begin_run(parts, req, size, contexts=contexts, progress=progress, cancel=cancel, preview=preview)
    mask = TemporalRegionMask(float(start_time), float(end_time), regenerate_video, regenerate_audio)

    voice = reference_audio_latent(parts, req)  # ID-LoRA reference speech: the retaken words keep the voice

    def conditioning(_size: VideoSize, _stage: int) -> list[Conditioning]:
        return [mask, *reference_audio_conditions(voice, run.dtype, run.device)]

    audio_in = None if audio_latent is None else audio_latent.to(device=run.device, dtype=run.dtype)
    v, a = run_stages(parts, req, run, conditioning, video_latent=video_latent.to(device=run.device, dtype=run.dtype),
                      audio_latent=audio_in, with_audio=audio_latent is not None)
    redone = video_frame_region(f, req.fps, start_time, end_time) & regenerate_video
    video = keep_outside(video_latent, v, redone)
    audio = None
    if audio_latent is not None:
        redone = audio_frame_region(audio_latent.shape[2], start_time, end_time) & regenerate_audio
        audio = keep_outside(audio_latent, a, redone)
    return finish_run(parts, req, Result(video, audio), cancel)
