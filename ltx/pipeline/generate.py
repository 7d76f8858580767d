"""Text/image/keyframe/audio → video with sound from :class:`ModelParts` (extension of a clip is
:func:`~.extend_clip.extend`, re-exported here).

Stages: encode prompts → (encode images / audio) → stage 1 at the requested size (half size when upscaling) →
optional 2× latent upscale + refinement with image guides re-encoded at full size → guides dropped → decode.
Progress is reported over all sampling steps of all stages as ``progress(done, total)``; ``cancel()`` is checked
before every model call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..text.processor import TextContexts
from ..transformer import RunOptions
from .common import (
    Result,
    StageProgress,
    conditioning_audio,
    decode,
    encode_contexts,
    free_memory,
    half_size,
    image_conditions,
    placement,
    ready,
    stage1_sigmas,
    stage2_sigmas,
)
from .components import ModelParts
from .denoiser import Denoiser
from .extend_clip import extend
from .latents import AUDIO_MEL_BINS, VideoSize
from .request import Request
from .sampling import SamplerOptions
from .stage import run_stage

__all__ = ["Result", "extend", "generate"]


def generate(parts: ModelParts, req: Request, *, contexts: tuple[TextContexts, TextContexts | None] | None = None,
             progress: Callable[[int, int], None] | None = None,
             cancel: Callable[[], bool] | None = None) -> Result:
    """Run a whole generation. ``contexts`` (positive, negative) skips prompt encoding when given."""
    ready(parts)
    model = parts.transformer
    dtype, device = placement(parts)
    full = VideoSize(req.frames, req.height, req.width, req.fps)
    stage1 = half_size(parts, req, full) if req.upscale else full
    positive, negative = contexts if contexts is not None else encode_contexts(parts, req)
    if req.free_between_stages and contexts is None:
        free_memory(parts, text=True)
    sigmas = stage1_sigmas(parts, req)
    sigmas2 = stage2_sigmas(req) if req.upscale else None
    tick = StageProgress(len(sigmas) - 1 + (len(sigmas2) - 1 if sigmas2 is not None else 0), progress).tick

    options = RunOptions(attention_backend=req.attention, ff_chunks=max(1, req.ff_chunks))
    audio_latent = conditioning_audio(parts, req, stage1)
    with_audio = req.generate_audio or audio_latent is not None
    channels = model.config.in_channels
    audio_channels = model.config.audio_in_channels // AUDIO_MEL_BINS
    sampler_opts = SamplerOptions(eta=req.eta, seed=req.seed + 1)

    noise = torch.Generator().manual_seed(req.seed)  # one stream for both stages, like the reference
    denoiser = Denoiser(model, positive, negative, req.video_guidance, req.audio_guidance, options)
    v, a = run_stage(denoiser, stage1, sigmas, channels=channels, audio_channels=audio_channels, seed=noise,
                     sampler=req.sampler,
                     sampler_options=sampler_opts, conditions=image_conditions(parts, req, stage1, dtype, device),
                     audio_latent=audio_latent, with_audio=with_audio, audio_frozen=audio_latent is not None,
                     dtype=dtype, device=device, progress=tick, cancel=cancel)
    if req.upscale:
        if req.free_between_stages:
            free_memory(parts)
        v = parts.upscaler(v)
        denoiser2 = Denoiser(model, positive, negative, req.upscale_guidance, req.upscale_guidance, options)
        v, a = run_stage(denoiser2, full, sigmas2, channels=channels, audio_channels=audio_channels,
                         seed=noise, sampler=req.sampler,
                         sampler_options=sampler_opts, conditions=image_conditions(parts, req, full, dtype, device),
                         video_latent=v, audio_latent=a, with_audio=with_audio,
                         audio_frozen=audio_latent is not None, noise_scale=float(sigmas2[0]), dtype=dtype,
                         device=device, progress=tick, cancel=cancel)
    result = Result(v, a)
    if req.decode:
        if req.free_between_stages:
            free_memory(parts, transformer=True)
        result = decode(parts, result)
    return result
