"""Text/image/keyframe/audio → video with sound from :class:`ModelParts` (extension of a clip is
:func:`~.extend_clip.extend`, re-exported here).

Stages: encode prompts → (encode images / audio) → stage 1 at the requested size (half size when upscaling) →
optional 2× latent upscale + refinement with image guides re-encoded at full size → guides dropped → decode.
Progress is reported over all sampling steps of all stages as ``progress(done, total)``; ``cancel()`` is checked
before every model call.
"""

from __future__ import annotations

from collections.abc import Callable

from ..text.processor import TextContexts
from .common import Result, conditioning_audio, image_conditions
from .extend_clip import extend
from .latents import VideoSize
from .protocols import ModelParts
from .request import Request
from .run_setup import begin_run, finish_run, upsample_between_stages

__all__ = ["Result", "extend", "generate"]


def generate(parts: ModelParts, req: Request, *, contexts: tuple[TextContexts, TextContexts | None] | None = None,
             progress: Callable[[int, int], None] | None = None,
             cancel: Callable[[], bool] | None = None) -> Result:
    """Run a whole generation. ``contexts`` (positive, negative) skips prompt encoding when given.

    Returns latents ``(B, 128, F', H/32, W/32)`` (``F' = 1 + (req.frames − 1)/8`` latent frames) / ``(B, 8, T, 16)``
    (25 latent frames per second; None without sound) and, with ``req.decode``, uint8 frames
    ``(B, req.frames, H, W, 3)`` and a waveform ``(B, 2, S)`` with its sample rate in Hz.
    Mirrors ltx-pipelines' ``ltx_pipelines.ti2vid_two_stages.TI2VidTwoStagesPipeline`` /
    ``ltx_pipelines.a2vid_two_stage.A2VidPipelineTwoStage`` (one stage when ``req.upscale`` is off).

    Raises:
        InputError: before any step, when a needed part is missing or a setting does not fit the model.
        CheckpointError: the audio VAE lacks the encoder (conditioning audio) or decoder / vocoder weights.
        NonFiniteError: the model's prediction became NaN or infinite at some step.
        Cancelled: ``cancel()`` returned True.
    """
    run = begin_run(parts, req, VideoSize(req.frames, req.height, req.width, req.fps), contexts=contexts,
                    progress=progress, cancel=cancel)
    audio_latent = conditioning_audio(parts, req, run.stage1)
    frozen = audio_latent is not None
    shared = dict(channels=run.channels, audio_channels=run.audio_channels, seed=run.noise, sampler=req.sampler,
                  sampler_options=run.sampler_options, with_audio=req.generate_audio or frozen, audio_frozen=frozen,
                  dtype=run.dtype, device=run.device, progress=run.tick, cancel=cancel)
    v, a = run.run_stage(run.denoiser(parts, req), run.stage1, run.sigmas, audio_latent=audio_latent,
                         conditions=image_conditions(parts, req, run.stage1, run.dtype, run.device), **shared)
    if req.upscale:
        v = upsample_between_stages(parts, req, v)
        v, a = run.run_stage(run.denoiser(parts, req, refine=True), run.full, run.sigmas2, video_latent=v,
                             audio_latent=a, conditions=image_conditions(parts, req, run.full, run.dtype, run.device),
                             noise_scale=float(run.sigmas2[0]), **shared)
    return finish_run(parts, req, Result(v, a), cancel)
