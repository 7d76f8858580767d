"""The one two-stage runner that :func:`~.generate.generate`, :func:`~.extend_clip.extend` and the other recipes
share: stage 1 at the stage-1 size, then (with ``req.upscale``) the 2× latent upsampler and a refinement stage at full
size that re-noises the upsampled latent to its first σ — ``ltx_pipelines.ti2vid_two_stages.TI2VidTwoStagesPipeline``
's two ``denoise_audio_video`` calls. A recipe only says which conditioning each stage gets."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .conditioning import Conditioning
from .latents import VideoSize
from .protocols import ModelParts
from .request import Request
from .run_setup import RunSetup, upsample_between_stages

#: ``conditioning(size, stage) -> [Conditioning, …]`` for a stage of ``size`` (``stage`` 1, or 2 = the refinement
#: after the 2× upsampler)
StageConditioning = Callable[[VideoSize, int], Sequence[Conditioning]]


def run_stages(parts: ModelParts, req: Request, run: RunSetup, conditioning: StageConditioning, *,
               video_latent: torch.Tensor | None = None, audio_latent: torch.Tensor | None = None,
               with_audio: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Stage 1 (and the 2× pass when ``req.upscale``) of a run; returns ``(video latent (B, C, F', H', W'), audio
    latent (B, 8, T, 16) | None)`` at the full size. ``video_latent`` / ``audio_latent`` start stage 1 (None: zeros);
    stage 2 starts from stage 1's results (video upsampled 2×).

    Raises:
        InputError / NonFiniteError / Cancelled: as :func:`~.stage.run_stage`.
    """
    inputs = run.stage_inputs(req, run.stage1, run.sigmas, conditioning=tuple(conditioning(run.stage1, 1)),
                              video_latent=video_latent, audio_latent=audio_latent, with_audio=with_audio)
    v, a = run.run_stage(run.denoiser(parts, req), inputs, run.callbacks)
    if req.upscale:
        v = upsample_between_stages(parts, req, v)
        inputs = run.stage_inputs(req, run.full, run.sigmas2, refine=True,
                                  conditioning=tuple(conditioning(run.full, 2)),
                                  video_latent=v, audio_latent=a, with_audio=with_audio,
                                  noise_scale=float(run.sigmas2[0]))
        v, a = run.run_stage(run.denoiser(parts, req, refine=True), inputs, run.callbacks)
    return v, a
