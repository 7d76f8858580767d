"""Latent sizes, empty latents and seeded noise.

Pixel video ``frames × height × width`` at ``fps`` ↔ video latent ``(B, 128, 1 + (frames − 1)/8, height/32, width/32)``;
audio latent ``(B, 8, round(frames / fps · 25), 16)`` (25 latent frames per second of video).
Sizes mirror ``ltx_core.types.VideoLatentShape.from_pixel_shape`` and ``AudioLatentShape.from_video_pixel_shape``.
Noise is drawn on the CPU from ``torch.Generator().manual_seed(seed)`` in float32 and then moved, so a seed gives the
same video on every device (ltx-pipelines seeds a generator on the run's device, so its noise differs per device);
video tokens are drawn first, then audio, as in ``ltx_pipelines.utils.helpers.denoise_audio_video``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError
from ..tokens import AUDIO_LATENTS_PER_SECOND, VIDEO_SCALE

VIDEO_LATENT_CHANNELS = 128
AUDIO_LATENT_CHANNELS = 8
AUDIO_MEL_BINS = 16


@dataclass(frozen=True)
class VideoSize:
    """Requested output video: ``frames`` pixel frames (8k+1) of ``height × width`` pixels (multiples of 32) at
    ``fps`` frames per second, ``batch`` videos; ``ltx_core.types.VideoPixelShape``. Building one raises
    :class:`~rs_ltxv.ltx.errors.InputError` for any other value."""

    frames: int
    height: int
    width: int
    fps: float = 24.0
    batch: int = 1

    def __post_init__(self) -> None:
        t, s = VIDEO_SCALE[0], VIDEO_SCALE[1]
        if self.frames < 1 or (self.frames - 1) % t:
            lo = max(1, (self.frames - 1) // t * t + 1)
            raise InputError(f"frames must be 8·k + 1 (1, 9, 17, …, 121, …); got {self.frames}. "
                             f"Use {lo} or {lo + t}.")
        for name, value in (("height", self.height), ("width", self.width)):
            if value < 1:
                raise InputError(f"{name} must be positive (a multiple of {s} pixels); got {value}. Use {s} or more.")
            if value < s or value % s:
                lo = max(s, value // s * s)
                raise InputError(f"{name} must be a multiple of {s} pixels; got {value}. Use {lo} or {lo + s}.")
        if self.fps <= 0:
            raise InputError(f"fps must be positive; got {self.fps}")
        if self.batch < 1:
            raise InputError(f"batch must be at least 1; got {self.batch}")

    @property
    def latent_grid(self) -> tuple[int, int, int]:
        """``(F', H', W')`` latent frames, rows, columns."""
        return 1 + (self.frames - 1) // VIDEO_SCALE[0], self.height // VIDEO_SCALE[1], self.width // VIDEO_SCALE[2]

    @property
    def video_tokens(self) -> int:
        """Video latent tokens ``F'·H'·W'`` (``VideoLatentShape.token_count``)."""
        f, h, w = self.latent_grid
        return f * h * w

    @property
    def audio_frames(self) -> int:
        """Audio latent frames covering the video's duration."""
        return round(self.frames / self.fps * AUDIO_LATENTS_PER_SECOND)

    def video_latent_shape(self, channels: int = VIDEO_LATENT_CHANNELS) -> tuple[int, int, int, int, int]:
        """``(B, channels, F', H', W')`` of the video latent (:attr:`latent_grid`)."""
        return (self.batch, channels, *self.latent_grid)

    def audio_latent_shape(self, channels: int = AUDIO_LATENT_CHANNELS) -> tuple[int, int, int, int]:
        """``(B, channels, T, 16)`` of the audio latent: ``T`` = :attr:`audio_frames`, 16 mel bins."""
        return (self.batch, channels, self.audio_frames, AUDIO_MEL_BINS)


SEED_MAX = 2**64 - 1  # ComfyUI's seed widget maximum (0xffffffffffffffff); torch.Generator accepts it


def offset_seed(seed: int, offset: int) -> int:
    """``seed + offset`` wrapped into ``0 … 2**64 − 1`` (a sampler's own noise stream, the next stage)."""
    return (int(seed) + offset) % (SEED_MAX + 1)


def seeded_noise(shapes: list[tuple[int, ...]], seed: int | torch.Generator, *, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Standard normal tensors of ``shapes`` drawn in order from one CPU generator seeded with ``seed`` (or from a
    given generator, which continues its stream — the two stages of a generation share one, as the ltx-pipelines
    two-stage pipelines share one ``GaussianNoiser`` generator), drawn in float32 and then cast to ``dtype`` on
    ``device``: one tensor of each shape in ``shapes``, e.g. ``[(B, T_v, C_v), (B, T_a, C_a)]``. ``seed`` is in
    ``0 … 2**64 − 1``."""
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))
    return [torch.randn(shape, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype) for shape in shapes]
