"""One denoising stage: build the video/audio tracks, apply the stage's conditioning objects
(:mod:`.conditioning`; latents are already encoded), noise them from a seed, sample, drop the guide tokens and return
latents. Together this is ``ltx_pipelines.utils.helpers.denoise_audio_video``: noise, loop, drop the conditioning,
unpatchify. A stage gets one :class:`StageInputs` bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..tokens import (
    audio_positions,
    audio_to_tokens,
    tokens_to_audio,
    tokens_to_video,
    video_positions,
    video_to_tokens,
)
from .conditioning import Conditioning, StageState
from .finite import finite_checked
from .kdiffusion import ExternalSampler, sample_external
from .latents import AUDIO_LATENT_CHANNELS, AUDIO_MEL_BINS, VIDEO_LATENT_CHANNELS, VideoSize, seeded_noise
from .sampling import Callbacks, Denoise, SamplerOptions, sample
from .track import Track


@dataclass(frozen=True)
class StageInputs:
    """Everything one denoising stage takes besides the denoiser and the callbacks.

    Attributes:
        size: the stage's output size (pixel frames ``8k+1``, pixels, fps, batch).
        sigmas: σ schedule ``(n + 1,)`` float.
        seed: an int or the run's CPU generator (the stages of a run share one stream).
        conditioning: :class:`~.conditioning.Conditioning` objects applied in order to the un-noised state.
        video_latent / audio_latent: starting latents ``(B, C, F', H', W')`` / ``(B, 8, T, 16)``; None: zeros.
        with_audio: build an audio track (sound is generated or kept).
        noise_scale: < 1 re-noises the given latents partially (refinement stages start at their first σ).
        channels / audio_channels: latent channels of the video (128) and of the audio (8) stream.
        sampler: a built-in name (:data:`~.sampling.SAMPLERS`) or an :class:`~.kdiffusion.ExternalSampler`, which
            gets the same noised tracks and ``sampler_options.seed`` as ``extra_args["seed"]``.
        sampler_options: settings of the built-in samplers (None: defaults).
        dtype / device: of the latents and activations.
    """

    size: VideoSize
    sigmas: torch.Tensor
    seed: int | torch.Generator = 0
    conditioning: tuple[Conditioning, ...] = ()
    video_latent: torch.Tensor | None = None
    audio_latent: torch.Tensor | None = None
    with_audio: bool = True
    noise_scale: float = 1.0
    channels: int = VIDEO_LATENT_CHANNELS
    audio_channels: int = AUDIO_LATENT_CHANNELS
    sampler: str | ExternalSampler = "euler"
    sampler_options: SamplerOptions | None = None
    dtype: torch.dtype = torch.float32
    device: torch.device | str = "cpu"


def prepare_tracks(inputs: StageInputs) -> tuple[Track, Track | None]:
    """Un-noised tracks of a stage: zeros (or the given latents) as tokens ``(B, F'·H'·W', C)`` / ``(B, T, 128)`` with
    positions in the model dtype and the video's first latent frame keyframe-marked (``H'·W'`` tokens; only LTX-2.5
    reads the marker), then every conditioning applied in order. Mirrors
    ``ltx_pipelines.utils.helpers.noise_video_state`` / ``noise_audio_state`` before their noiser.

    Raises:
        InputError: a conditioning does not fit the stage.
    """
    size, dtype, device = inputs.size, inputs.dtype, inputs.device
    video_latent = inputs.video_latent
    if video_latent is None:
        video_latent = torch.zeros(size.video_latent_shape(inputs.channels), dtype=dtype, device=device)
    _, height, width = size.latent_grid
    video = Track.from_latent(video_to_tokens(video_latent).to(dtype),
                              video_positions(size.batch, *size.latent_grid, size.fps, device=device, dtype=dtype),
                              marked=height * width)
    audio = None
    if inputs.with_audio:
        audio_latent = inputs.audio_latent
        if audio_latent is None:
            audio_latent = torch.zeros(size.audio_latent_shape(inputs.audio_channels), dtype=dtype, device=device)
        positions = audio_positions(size.batch, audio_latent.shape[2], device=device, dtype=torch.float32)
        audio = Track.from_latent(audio_to_tokens(audio_latent).to(dtype), positions)
    state = StageState(video, audio, size)
    for item in inputs.conditioning:
        state = item.apply(state)
    return state.video, state.audio


def noise_tracks(video: Track, audio: Track | None, seed: int | torch.Generator, noise_scale: float = 1.0
                 ) -> tuple[Track, Track | None]:
    """Gaussian noise from ``seed`` (video tokens first, then audio), scaled by each token's mask·noise_scale: each
    latent ``(B, T, C)`` becomes ``noise·m + latent·(1 − m)`` with ``m = mask·noise_scale``
    (``ltx_core.components.noisers.GaussianNoiser``, noise drawn as in :func:`~.latents.seeded_noise`)."""
    shapes = [tuple(video.latent.shape)] + ([tuple(audio.latent.shape)] if audio is not None else [])
    noises = seeded_noise(shapes, seed, device=video.latent.device, dtype=video.latent.dtype)
    video = video.noised(noises[0], noise_scale)
    audio = None if audio is None else audio.noised(noises[1], noise_scale)
    return video, audio


def run_stage(denoise: Denoise, inputs: StageInputs, callbacks: Callbacks | None = None
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Denoise one stage and return ``(video latent (B, C, F', H', W'), audio latent (B, 8, T, 16) | None)``, guide
    tokens dropped. ``callbacks``: progress after every step, cancel before every model call, and ``preview(done,
    total, x0 video latent (B, C, F', H', W'))`` after every step (the stage's grid, guide tokens dropped).

    Raises:
        InputError: a conditioning does not fit the video, or an unknown sampler name / an external sampler
            needing what RS-LTXV does not offer.
        NonFiniteError: the model's prediction became NaN or infinite (:func:`~.finite.finite_checked`).
        Cancelled: ``callbacks.cancel()`` returned True.
    """
    callbacks = replace(callbacks or Callbacks(), grid=inputs.size.latent_grid)
    preview = callbacks.show if callbacks.preview is not None else None  # x0 tokens → latent of this stage's grid
    video, audio = noise_tracks(*prepare_tracks(inputs), inputs.seed, inputs.noise_scale)
    sigmas = inputs.sigmas.to(inputs.device)
    denoise = finite_checked(denoise)
    if isinstance(inputs.sampler, ExternalSampler):
        seed_ = (inputs.sampler_options or SamplerOptions()).seed
        video, audio = sample_external(inputs.sampler, denoise, video, audio, sigmas, seed=seed_,
                                       progress=callbacks.progress, cancel=callbacks.cancel, preview=preview)
    else:
        video, audio = sample(denoise, video, audio, sigmas, inputs.sampler, inputs.sampler_options,
                              callbacks.progress, callbacks.cancel, preview=preview)
    video = video.without_guides()
    audio = None if audio is None else audio.without_guides()  # reference audio tokens (ID-LoRA)
    v = tokens_to_video(video.latent, *inputs.size.latent_grid)
    a = None if audio is None else tokens_to_audio(audio.latent, inputs.audio_channels, AUDIO_MEL_BINS)
    return v, a
