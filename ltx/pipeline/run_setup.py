"""The opening and closing that :func:`~.generate.generate` and :func:`~.extend_clip.extend` share: check the parts
against the request, place the model, encode the prompt, build both stages' σ and the progress counter
(:func:`begin_run`); free memory and decode at the end (:func:`finish_run`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from ..errors import CheckpointError, InputError
from ..text.processor import TextContexts
from ..transformer import RunOptions
from .common import (
    Result,
    StageProgress,
    check_parts,
    decode,
    encode_contexts,
    free_memory,
    half_size,
    placement,
    ready,
    stage1_sigmas,
    stage2_sigmas,
)
from .defaults import ModelDefaults, defaults_for_parts, resolve_request
from .denoiser import Denoiser
from .latents import AUDIO_MEL_BINS, VideoSize, offset_seed
from .preview import PreviewHook, latent_preview_for
from .protocols import ModelParts, StageRunnerProtocol
from .request import Request
from .sampling import Callbacks, SamplerOptions
from .stage import StageInputs, run_stage

log = logging.getLogger(__name__)


@dataclass
class RunSetup:
    """What both stages of a run use. ``stage1`` is ``full`` at half size when the 2× pass is on; ``sigmas2`` is
    None without it. ``noise`` is the one seeded stream both stages draw from (as in ltx-pipelines)."""

    dtype: torch.dtype
    device: torch.device
    full: VideoSize
    stage1: VideoSize
    positive: TextContexts
    negative: TextContexts | None
    sigmas: torch.Tensor
    sigmas2: torch.Tensor | None
    options: RunOptions
    channels: int
    audio_channels: int
    sampler_options: SamplerOptions
    noise: torch.Generator
    #: progress over all stages of the run and the cancel check, as every stage gets them
    callbacks: Callbacks = field(default_factory=Callbacks)
    #: :func:`~.stage.run_stage`, or the parts' :attr:`~.protocols.ModelParts.stage_runner` (multi-GPU)
    run_stage: StageRunnerProtocol = run_stage
    #: the model's defaults row (:mod:`.defaults`): the Euler-ancestral noise offset of this generation
    defaults: ModelDefaults | None = None

    def denoiser(self, parts: ModelParts, req: Request, *, refine: bool = False) -> Denoiser:
        """The stage-1 denoiser, or with ``refine`` the 2× pass's (its own guidance for both streams); identity
        guidance (``req.identity_guidance`` over its range) in both when the request has reference audio."""
        video_g, audio_g = ((req.upscale_guidance, req.upscale_guidance) if refine
                            else (req.video_guidance, req.audio_guidance))
        identity = req.identity_guidance if req.reference_audio is not None else 0.0  # ID-LoRA: both stages
        return Denoiser(parts.transformer, self.positive, self.negative, video_g, audio_g, self.options,
                        identity_guidance=identity, identity_start=req.identity_guidance_start,
                        identity_end=req.identity_guidance_end)

    def stage_inputs(self, req: Request, size: VideoSize, sigmas: torch.Tensor, *, refine: bool = False,
                     **fields) -> StageInputs:
        """A :class:`~.stage.StageInputs` of this run for a stage of ``size`` over ``sigmas``: the run's noise stream,
        sampler (``req.sampler``; with ``refine`` the 2× pass's ``req.upscale_sampler``), latent channels, dtype and
        device, plus ``fields`` (conditioning, latents, with_audio, noise_scale). Euler-ancestral draws its own noise
        from ``seed + offset`` (the model's :attr:`~.defaults.ModelDefaults.ancestral_noise_offset`: 10000 for
        LTX-2.5, as ltx-pipelines' ``DistilledPipeline``); the other samplers from ``seed + 1``."""
        sampler = (req.upscale_sampler or req.sampler) if refine else req.sampler
        options = self.sampler_options
        if sampler == "euler_ancestral" and self.defaults is not None:
            options = replace(options, seed=offset_seed(req.seed, self.defaults.ancestral_noise_offset))
        return StageInputs(size=size, sigmas=sigmas, seed=self.noise, sampler=sampler,
                           sampler_options=options, channels=self.channels,
                           audio_channels=self.audio_channels, dtype=self.dtype, device=self.device, **fields)


def begin_run(parts: ModelParts, req: Request, full: VideoSize, *,
              contexts: tuple[TextContexts, TextContexts | None] | None,
              progress: Callable[[int, int], None] | None,
              cancel: Callable[[], bool] | None = None, preview: PreviewHook | None = None) -> RunSetup:
    """Check, place and encode; ``full`` is the output size (pixels, pixel frames). Stage-1 σ are
    ``(steps + 1,)``, stage-2 σ (2× pass only) those of :func:`~.common.stage2_sigmas`. ``preview(done, total,
    image)`` gets a uint8 ``(H, W, 3)`` picture of every step's x0 (:func:`run_callbacks`).

    Raises:
        InputError: before any step runs (see :func:`~.common.check_parts`, :func:`~.common.half_size`).
        Cancelled: ``cancel()`` returned True while the prompt was encoded.
    """
    defaults = defaults_for_parts(parts)
    req = resolve_request(req, defaults)  # a no-op when the caller resolved it (it must, to use the same values)
    check_parts(parts, req, has_contexts=contexts is not None)
    if parts.stage_runner is None:  # a stage runner's workers hold their own copy of the weights
        ready(parts)
    dtype, device = placement(parts)
    stage1 = half_size(parts, req, full) if req.upscale else full
    positive, negative = contexts if contexts is not None else encode_contexts(parts, req, cancel)
    if req.free_between_stages and contexts is None:
        free_memory(parts, text=True)
    sigmas = stage1_sigmas(parts, req)
    sigmas2 = stage2_sigmas(req) if req.upscale else None
    steps = len(sigmas) - 1 + (len(sigmas2) - 1 if sigmas2 is not None else 0)
    config = parts.transformer.config
    return RunSetup(
        dtype=dtype, device=device, full=full, stage1=stage1, positive=positive, negative=negative, sigmas=sigmas,
        sigmas2=sigmas2,
        options=RunOptions(attention_mode=req.attention_mode, ffn_chunks=max(1, req.ffn_chunks)),
        channels=config.in_channels, audio_channels=config.audio_in_channels // AUDIO_MEL_BINS,
        sampler_options=SamplerOptions(eta=req.eta, seed=offset_seed(req.seed, 1)),
        noise=torch.Generator().manual_seed(req.seed), callbacks=run_callbacks(parts, steps, progress, cancel, preview),
        run_stage=parts.stage_runner or run_stage, defaults=defaults,
    )


def run_callbacks(parts: ModelParts, steps: int, progress: Callable[[int, int], None] | None,
                  cancel: Callable[[], bool] | None, preview: PreviewHook | None) -> Callbacks:
    """The run's :class:`~.sampling.Callbacks`: ``progress(done, total)`` counted over all ``steps`` of all stages,
    ``cancel``, and ``preview(done, total, image)`` with the same counts and a uint8 ``(H, W, 3)`` picture of the
    step's x0 (the middle latent frame through :func:`~.preview.latent_preview_for` of ``parts.video_vae``, fitted
    once per VAE object). No previews without a video VAE with an encoder, or with a stage runner (multi-GPU: the
    workers report progress only)."""
    counter = StageProgress(steps, progress)
    if preview is None or parts.stage_runner is not None or parts.video_vae is None:
        return Callbacks(counter.tick, cancel)
    try:
        latent_map = latent_preview_for(parts.video_vae)
    except (CheckpointError, InputError, RuntimeError) as exc:  # e.g. a VAE without the encoder, or whose latent
        log.warning("No live preview: %s", exc)  # the fit cannot read: generate without previews, one line
        return Callbacks(counter.tick, cancel)
    failed: list[str] = []

    def show(_done: int, _total: int, latent: torch.Tensor) -> None:
        if failed:
            return
        try:
            image = latent_map.image(latent)
        except InputError as exc:  # a latent the map does not fit: stop previewing, keep sampling
            failed.append(str(exc))
            log.warning("No live preview: %s", exc)
            return
        preview(counter.done, counter.total, image)

    return Callbacks(counter.tick, cancel, show)


def upsample_between_stages(parts: ModelParts, req: Request, video: torch.Tensor) -> torch.Tensor:
    """Free what stage 1 no longer needs (if asked) and upsample its normalised video latent 2× for the refinement
    pass: ``(B, C, F', H', W')`` → ``(B, C, F', 2H', 2W')`` with ``parts.upsampler``."""
    if req.free_between_stages:
        free_memory(parts)
    return parts.upsampler(video)


def finish_run(parts: ModelParts, req: Request, result: Result, cancel: Callable[[], bool] | None = None) -> Result:
    """Decode when the request asks for it (freeing the transformer first if asked; ``cancel`` honoured).

    With conditioning audio (audio-to-video) the sound of the result is the user's own waveform, cut to the video's
    length, not the audio VAE's re-synthesis of it — as ltx-pipelines' ``A2VidPipelineTwoStage`` returns it.

    Raises:
        InputError / CheckpointError / Cancelled: as :func:`~.common.decode`.
    """
    if not req.decode:
        return result
    if req.free_between_stages:
        free_memory(parts, transformer=True)
    result = decode(parts, result, cancel)
    if req.audio is not None:
        result.waveform, result.sample_rate = input_audio(req, result.video_latent.shape[0], result.frames.shape[1])
    return result


def input_audio(req: Request, batch: int, frames: int) -> tuple[torch.Tensor, int]:
    """The request's conditioning waveform ``(C, S)`` as ``(batch, C, S')``: ``S'`` covers ``frames`` pixel frames
    at ``req.fps`` (seconds × sample rate in Hz), zero-padded if the input is shorter."""
    rate = int(req.audio_sample_rate)
    samples = round(frames / req.fps * rate)
    wave = req.audio.float()[:, :samples]
    if wave.shape[1] < samples:
        wave = torch.nn.functional.pad(wave, (0, samples - wave.shape[1]))
    return wave.unsqueeze(0).expand(batch, -1, -1).contiguous(), rate
