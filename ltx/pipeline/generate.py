"""Text/image/keyframe/audio → video with sound from :class:`ModelParts` (extension of a clip is
:func:`~.extend_clip.extend`, re-exported here).

Stages: encode prompts → (encode images / audio) → stage 1 at the requested size (half size when upscaling) →
optional 2× latent upscale + refinement with image guides re-encoded at full size → guides dropped → decode.
Progress is reported over all sampling steps of all stages as ``progress(done, total)``; ``cancel()`` is checked
before every model call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from ..errors import InputError
from ..text.processor import TextContexts
from .common import Result, conditioning_audio, encode_contexts, free_memory, image_conditions
from .conditioning import Conditioning, FrozenAudio
from .defaults import (
    AUTO_FRAMES,
    AUTO_MAX_SECONDS,
    AUTO_MIN_SECONDS,
    audio_frames,
    defaults_for_parts,
    model_has_duration_head,
    resolve_request,
)
from .extend_clip import extend
from .ic_lora import reference_conditions
from .id_lora import reference_audio_conditions, reference_audio_latent
from .latents import VideoSize
from .preview import PreviewHook
from .protocols import ModelParts
from .request import Request
from .run_setup import begin_run, finish_run
from .two_stage import run_stages

__all__ = ["Result", "extend", "frames_for_audio", "generate", "predict_frames"]

log = logging.getLogger(__name__)


def check_duration_head(parts: ModelParts) -> None:
    """A run with ``frames`` = :data:`~.defaults.AUTO_FRAMES` (and no conditioning audio) needs an LTX-2.5 model and
    ``parts.duration_head``.

    Raises:
        InputError: the model is LTX-2 / LTX-2.3 (no duration head exists for it: give the frames), or the parts have
            no duration head; the message says how to get one or to give the frames.
    """
    version = parts.transformer.config.version
    if not model_has_duration_head(version):
        name = getattr(version, "display", None) or f"LTX-{getattr(version, 'value', version)}"
        raise InputError(f"frames = 0 (auto) predicts the clip length with the LTX-2.5 duration head, which "
                         f"{name} models do not have: give a number of frames (8k + 1, e.g. 121).")
    if parts.duration_head is None:
        raise InputError("frames = 0 (auto) predicts the clip length with the LTX-2.5 duration head, but none is "
                         "loaded. Load it (load_model_parts(duration_head=FILE), e.g. "
                         "ltx-2.5-duration-head-bf16.safetensors) or give the number of frames (8k + 1).")


def predict_frames(parts: ModelParts, positive: TextContexts, fps: float, *, min_seconds: float = AUTO_MIN_SECONDS,
                   max_seconds: float = AUTO_MAX_SECONDS) -> int:
    """The clip length the duration head predicts from the prompt's contexts (video ``(1, S, D_v)``, audio
    ``(1, S, D_a)``): pixel frames ``8k + 1`` at ``fps`` frames per second within ``[min_seconds, max_seconds]``
    (1…20 s, ltx-pipelines' ``AutoDuration``). Mirrors ``ltx_pipelines.utils.blocks.resolve_num_frames``.

    Raises:
        InputError: ``parts.duration_head`` is None.
    """
    check_duration_head(parts)
    frames = int(parts.duration_head(positive, fps, min_seconds, max_seconds))
    log.info("duration head: %d frames (%.2f s at %g fps)", frames, frames / fps, fps)
    return frames


def frames_for_audio(req: Request) -> int:
    """The clip length of an audio-to-video request whose ``frames`` is :data:`~.defaults.AUTO_FRAMES`: the
    conditioning audio's (:func:`~.defaults.audio_frames`: 8k + 1 pixel frames covering it at ``req.fps``, at most
    20 s; a longer recording is cut there, with a warning). The duration head is not used: its length would cut the
    user's audio or pad it with silence."""
    frames, cut = audio_frames(req.audio.shape[-1], int(req.audio_sample_rate), req.fps)
    seconds = req.audio.shape[-1] / int(req.audio_sample_rate)
    if cut:
        log.warning("frames 0 (auto) with %.2f s of conditioning audio: the video covers its first %.2f s (%d "
                    "frames at %g fps); give frames to choose the length.", seconds, frames / req.fps, frames, req.fps)
    else:
        log.info("frames 0 (auto): %d frames (%.2f s at %g fps) cover the %.2f s of conditioning audio", frames,
                 frames / req.fps, req.fps, seconds)
    return frames


def generate(parts: ModelParts, req: Request, *, contexts: tuple[TextContexts, TextContexts | None] | None = None,
             progress: Callable[[int, int], None] | None = None,
             cancel: Callable[[], bool] | None = None, preview: PreviewHook | None = None) -> Result:
    """Run a whole generation. ``contexts`` (positive, negative) skips prompt encoding when given. ``preview(done,
    total, image)`` gets a uint8 ``(H, W, 3)`` picture of every step's x0 (:mod:`.preview`; the map is fitted on
    ``parts.video_vae`` once per VAE object; none with a multi-GPU stage runner or without a video VAE encoder).

    Settings the request leaves unset take the model's defaults (:mod:`.defaults`); ``req.frames`` 0 takes the
    length of the conditioning audio when there is one (:func:`frames_for_audio`), else predicts it with
    ``parts.duration_head`` from the prompt (:func:`predict_frames`, LTX-2.5 only); ``result.frames`` has it.

    Returns latents ``(B, 128, F', H/32, W/32)`` (``F' = 1 + (req.frames − 1)/8`` latent frames) / ``(B, 8, T, 16)``
    (25 latent frames per second; None without sound) and, with ``req.decode``, uint8 frames
    ``(B, req.frames, H, W, 3)`` and a waveform ``(B, 2, S)`` with its sample rate in Hz.
    Mirrors ltx-pipelines' ``ltx_pipelines.ti2vid_two_stages.TI2VidTwoStagesPipeline`` /
    ``ltx_pipelines.a2vid_two_stage.A2VidPipelineTwoStage`` (one stage when ``req.upscale`` is off).

    Raises:
        InputError: before any step, when a needed part is missing (the duration head for frames 0 without
            audio; an LTX-2 / 2.3 model has none) or a setting does not fit the model.
        CheckpointError: the audio VAE lacks the encoder (conditioning audio) or decoder / vocoder weights.
        NonFiniteError: the model's prediction became NaN or infinite at some step.
        Cancelled: ``cancel()`` returned True.
    """
    req = resolve_request(req, defaults_for_parts(parts))  # unset settings: the model's (.defaults)
    if req.frames == AUTO_FRAMES and req.audio is not None:  # audio to video: as long as the audio
        req = replace(req, frames=frames_for_audio(req))
    if req.frames == AUTO_FRAMES:  # the duration head predicts the length from the prompt's contexts
        check_duration_head(parts)
        if contexts is None:
            contexts = encode_contexts(parts, req, cancel)
            if req.free_between_stages:
                free_memory(parts, text=True)
        req = replace(req, frames=predict_frames(parts, contexts[0], req.fps))
    run = begin_run(parts, req, VideoSize(req.frames, req.height, req.width, req.fps), contexts=contexts,
                    progress=progress, cancel=cancel, preview=preview)
    audio_latent = conditioning_audio(parts, req, run.stage1)
    frozen = audio_latent is not None
    voice = reference_audio_latent(parts, req)  # ID-LoRA reference speech, in both stages

    def conditioning(size: VideoSize, stage: int) -> list[Conditioning]:
        # IC-LoRA references after the images, in stage 1 only (ltx_pipelines.ic_lora.ICLoraPipeline)
        references = reference_conditions(parts, req.reference_videos, size, run.dtype, run.device) if stage == 1 \
            else []
        return [*image_conditions(parts, req, size, run.dtype, run.device), *references,
                *([FrozenAudio()] if frozen else []), *reference_audio_conditions(voice, run.dtype, run.device)]

    v, a = run_stages(parts, req, run, conditioning, audio_latent=audio_latent,
                      with_audio=req.generate_audio or frozen)
    return finish_run(parts, req, Result(v, a), cancel)
