"""One denoising stage: build the video/audio tracks (with image/keyframe conditioning), noise them from a seed,
sample, drop the guide tokens and return latents.

Conditioning items are already-encoded latents (VAE encoding happens before): an item at pixel frame 0 replaces the
first latent frame(s) (``ltx_core.conditioning.types.latent_cond.VideoConditionByLatentIndex``); any other frame is
appended as guide tokens with its own positions
(``ltx_core.conditioning.types.keyframe_cond.VideoConditionByKeyframeIndex``), optionally with an attention strength
(``ltx_core.conditioning.types.attention_strength_wrapper.ConditioningItemAttentionStrengthWrapper``).
Together this is ``ltx_pipelines.utils.helpers.denoise_audio_video``: noise, loop, drop the conditioning, unpatchify.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from .finite import finite_checked
from .kdiffusion import ExternalSampler, sample_external
from .latents import AUDIO_LATENT_CHANNELS, AUDIO_MEL_BINS, VideoSize, seeded_noise
from .sampling import Denoise, SamplerOptions, sample
from .track import Track


@dataclass(frozen=True)
class LatentCondition:
    """An encoded image or clip ``(B, C, f, H', W')`` (f latent frames) placed at pixel frame ``pixel_frame``, kept
    with denoise strength ``strength`` (1 = exactly); ``attention_strength`` in [0, 1] weights attention between its
    guide tokens and the video (None: no mask)."""

    latent: torch.Tensor
    pixel_frame: int = 0
    strength: float = 1.0
    attention_strength: float | None = None
    as_guide: bool = False  # append as guide tokens even at frame 0 (keyframe interpolation, extension overlap)


def prepare_tracks(
    size: VideoSize,
    *,
    channels: int,
    audio_channels: int = AUDIO_LATENT_CHANNELS,
    conditions: Sequence[LatentCondition] = (),
    video_latent: torch.Tensor | None = None,
    audio_latent: torch.Tensor | None = None,
    with_audio: bool = True,
    audio_frozen: bool = False,
    audio_prefix: tuple[torch.Tensor, float] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[Track, Track | None]:
    """Un-noised tracks: zeros (or the given latents), conditioning applied, positions in the model dtype.

    ``video_latent`` ``(B, C, F', H', W')`` and ``audio_latent`` ``(B, 8, T, 16)`` default to zeros of ``size``;
    the tracks hold them as tokens ``(B, F'·H'·W', C)`` / ``(B, T, 128)``. ``audio_frozen`` keeps the whole audio
    fixed (mask 0: audio-to-video). Mirrors ``ltx_pipelines.utils.helpers.noise_video_state`` /
    ``noise_audio_state`` before their noiser.

    ``audio_prefix`` ``(latent (B, 8, n, 16), strength)`` keeps the first ``n`` audio latent frames (extension
    overlap) with denoise mask ``1 − strength``."""
    grid = size.latent_grid
    if video_latent is None:
        video_latent = torch.zeros(size.video_latent_shape(channels), dtype=dtype, device=device)
    video = Track.from_latent(video_to_tokens(video_latent).to(dtype),
                              video_positions(size.batch, *grid, size.fps, device=device, dtype=dtype))
    for cond in conditions:
        if cond.pixel_frame == 0 and cond.attention_strength is None and not cond.as_guide:
            video = video.replace_frames(cond.latent, 0, cond.strength, grid)
        else:
            video = video.append_guide(cond.latent, cond.pixel_frame, cond.strength, size.fps, cond.attention_strength)
    audio = None
    if with_audio:
        if audio_latent is None:
            audio_latent = torch.zeros(size.audio_latent_shape(audio_channels), dtype=dtype, device=device)
        positions = audio_positions(size.batch, audio_latent.shape[2], device=device, dtype=torch.float32)
        audio = Track.from_latent(audio_to_tokens(audio_latent).to(dtype), positions)
        if audio_frozen:
            audio = replace(audio, mask=torch.zeros_like(audio.mask))
        if audio_prefix is not None:
            audio = audio.replace_prefix(audio_to_tokens(audio_prefix[0]), audio_prefix[1])
    return video, audio


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


def run_stage(
    denoise: Denoise,
    size: VideoSize,
    sigmas: torch.Tensor,
    *,
    channels: int,
    seed: int | torch.Generator,
    audio_channels: int = AUDIO_LATENT_CHANNELS,
    sampler: str | ExternalSampler = "euler",
    sampler_options: SamplerOptions | None = None,
    conditions: Sequence[LatentCondition] = (),
    video_latent: torch.Tensor | None = None,
    audio_latent: torch.Tensor | None = None,
    with_audio: bool = True,
    audio_frozen: bool = False,
    audio_prefix: tuple[torch.Tensor, float] | None = None,
    noise_scale: float = 1.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Denoise one stage and return ``(video latent (B, C, F', H', W'), audio latent (B, 8, T, 16) | None)``.

    ``noise_scale`` < 1 re-noises given latents partially (refinement stages start at their first σ). ``sampler`` is
    a built-in name (:data:`~.sampling.SAMPLERS`) or an :class:`~.kdiffusion.ExternalSampler`, which gets the same
    noised tracks and ``sampler_options.seed`` as ``extra_args["seed"]``. ``sigmas`` ``(n + 1,)`` float.

    Raises:
        InputError: a conditioning latent does not fit the video, or an unknown sampler name / an external sampler
            needing what RS-LTXV does not offer.
        NonFiniteError: the model's prediction became NaN or infinite (:func:`~.finite.finite_checked`).
        Cancelled: ``cancel()`` returned True.
    """
    video, audio = prepare_tracks(size, channels=channels, audio_channels=audio_channels, conditions=conditions,
                                  video_latent=video_latent,
                                  audio_latent=audio_latent, with_audio=with_audio, audio_frozen=audio_frozen,
                                  audio_prefix=audio_prefix, dtype=dtype, device=device)
    video, audio = noise_tracks(video, audio, seed, noise_scale)
    sigmas = sigmas.to(device)
    denoise = finite_checked(denoise)
    if isinstance(sampler, ExternalSampler):
        seed_ = (sampler_options or SamplerOptions()).seed
        video, audio = sample_external(sampler, denoise, video, audio, sigmas, seed=seed_, progress=progress,
                                       cancel=cancel)
    else:
        video, audio = sample(denoise, video, audio, sigmas, sampler, sampler_options, progress, cancel)
    video = video.without_guides()
    v = tokens_to_video(video.latent, *size.latent_grid)
    a = None if audio is None else tokens_to_audio(audio.latent, audio_channels, AUDIO_MEL_BINS)
    return v, a
