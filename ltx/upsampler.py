"""Latent upsampler: video latents ``(B, 128, F, H, W)`` → spatially (×2, ×1.5) or temporally (×2) larger latents.

The model works on *un-normalised* VAE latents; :func:`upsample_latent` wraps it with the video VAE's per-channel
statistics (given as plain tensors). Config: the standalone file's ``__metadata__["config"]`` (flat keys). Variants:

=========================================  =======================================================================
``spatial_scale 2, rational false``        Conv2d → pixel shuffle 2×2 per frame (LTX-2.3 / LTX-2.5 x2)
``spatial_scale 2, rational true``         Conv2d → pixel shuffle 2×2 → (identity blur, stride 1) (LTX-2 x2)
``spatial_scale 1.5``                      Conv2d → pixel shuffle 3×3 → 5×5 binomial blur, stride 2 (LTX-2.3 x1.5)
``temporal_upsample``                      Conv3d → pixel shuffle ×2 over time, first frame dropped: F → 2F − 1
``temporal_upsample, spatial_upsample``    Conv3d → pixel shuffle 2×2×2, first frame dropped: (2F − 1, 2H, 2W)
=========================================  =======================================================================

The temporal kinds keep the causal grid: the first latent frame stands for one pixel frame, so ``n = 8(F − 1) + 1``
pixel frames become ``2(n − 1) + 1`` at twice the frame rate (:meth:`UpsamplerConfig.frames_after`; ltx-pipelines
1.2.0 ``DFRPipeline`` and diffusers ``LTX2DFRTemporalRefinePipeline`` double the fps). Released files:
``ltx-2.5-latent-temporal-upscaler-x2-bf16-1.0.safetensors`` (ltx-core builds it from its ``config`` metadata, so
that says ``temporal_upsample`` true, ``spatial_upsample`` false), ``ltx-2.3-temporal-upscaler-x2-*``.
Module and parameter names are the official ones (the files have no prefix).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError, InputError

# spatial scale → (pixel-shuffle factor, blur stride)
RATIONAL_SCALES: dict[float, tuple[int, int]] = {0.75: (3, 4), 1.5: (3, 2), 2.0: (2, 1), 4.0: (4, 1)}


@dataclass(frozen=True)
class UpsamplerConfig:
    """The latent upsampler: ``in_channels`` latent channels, ``mid_channels`` inside, ``dims`` 2 (per frame) or 3;
    see the module table for the upsampling kinds.

    Mirrors what ``ltx_core.model.upsampler.model_configurator.LatentUpsamplerConfigurator`` reads (diffusers:
    ``diffusers.pipelines.ltx2.latent_upsampler.LTX2LatentUpsamplerModel``'s config).
    """

    in_channels: int = 128
    mid_channels: int = 512
    num_blocks_per_stage: int = 4
    dims: int = 3
    spatial_upsample: bool = True
    temporal_upsample: bool = False
    spatial_scale: float = 2.0
    rational_resampler: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UpsamplerConfig:
        """Build from the file's flat ``config`` dict (unknown keys are ignored).

        Raises:
            ConfigError: not a JSON object, no upsampling, ``dims`` other than 2 / 3, temporal upsampling with
                ``dims`` 2, an unsupported spatial scale, or ``mid_channels`` not a multiple of 32.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"The latent upsampler config must be a JSON object, got {type(d).__name__}.")
        known = set(cls.__dataclass_fields__)
        cfg = cls(**{k: v for k, v in d.items() if k in known})
        cfg = UpsamplerConfig(**{**asdict(cfg), "spatial_scale": float(cfg.spatial_scale)})
        if not (cfg.spatial_upsample or cfg.temporal_upsample):
            raise ConfigError("Latent upsampler config: spatial_upsample or temporal_upsample must be true.")
        if cfg.dims not in (2, 3):
            raise ConfigError(f"Latent upsampler config: dims={cfg.dims} (must be 2 or 3).")
        if cfg.dims == 2 and cfg.temporal_upsample:
            raise ConfigError("Latent upsampler config: temporal upsampling needs dims=3.")
        if cfg.spatial_upsample and not cfg.temporal_upsample:
            if cfg.rational_resampler and cfg.spatial_scale not in RATIONAL_SCALES:
                raise ConfigError(f"Latent upsampler config: spatial_scale {cfg.spatial_scale} is not supported "
                                  f"(choose from {sorted(RATIONAL_SCALES)}).")
            if not cfg.rational_resampler and cfg.spatial_scale != 2.0:
                raise ConfigError("Latent upsampler config: a spatial_scale other than 2 needs rational_resampler.")
        if cfg.mid_channels % 32:
            raise ConfigError(f"Latent upsampler config: mid_channels {cfg.mid_channels} is not a multiple of 32 "
                              "(GroupNorm with 32 groups).")
        return cfg

    @property
    def frame_rate_factor(self) -> int:
        """2 for the temporal kinds (the frame rate doubles), else 1."""
        return 2 if self.temporal_upsample else 1

    def frames_after(self, frames: int) -> int:
        """Frames after upsampling, latent or pixel (the same rule on the causal grid): ``2(frames − 1) + 1`` for the
        temporal kinds, ``frames`` otherwise.

        Raises:
            InputError: ``frames`` is under 1.
        """
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise InputError(f"A frame count must be a positive integer, got {frames!r}.")
        return 2 * (frames - 1) + 1 if self.temporal_upsample else frames


def pixel_shuffle(x: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
    """Move channel sub-blocks into the last ``len(factors)`` axes: ``(B, C·∏f, *S)`` → ``(B, C, *(s·f))``; channel
    index = ``c·∏f + i1·f2·f3 + i2·f3 + i3`` (as ``einops 'b (c p1 p2 p3) …'``). Time-only shuffles of
    ``(B, C·f, F, H, W)`` use ``factors=(f, 1, 1)``.

    Mirrors ``ltx_core.model.upsampler.pixel_shuffle.PixelShuffleND``.
    """
    b, c = x.shape[:2]
    spatial = x.shape[2:]
    n = len(factors)
    lead, tail = spatial[: len(spatial) - n], spatial[len(spatial) - n:]
    cout = c // math.prod(factors)
    x = x.reshape(b, cout, *factors, *lead, *tail)
    # axes: 0 b, 1 c, 2..2+n factors, then lead, then tail
    base = 2 + n + len(lead)
    order = [0, 1, *range(2 + n, base)]
    for i in range(n):
        order += [base + i, 2 + i]
    x = x.permute(*order)
    return x.reshape(b, cout, *lead, *(t * f for t, f in zip(tail, factors, strict=True)))


class ResBlock(nn.Module):
    """conv → GN → SiLU → conv → GN, add input, SiLU. Mirrors ``ltx_core.model.upsampler.res_block.ResBlock``."""

    def __init__(self, channels: int, dims: int) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.conv1 = conv(channels, channels, 3, padding=1)
        self.norm1 = nn.GroupNorm(32, channels)
        self.conv2 = conv(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(32, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, F, H, W)`` (dims 3) or ``(N, C, H, W)`` (dims 2) → same shape."""
        h = F.silu(self.norm1(self.conv1(x)))
        return F.silu(self.norm2(self.conv2(h)) + x)


class BlurDownsample(nn.Module):
    """Depthwise 5×5 binomial ([1 4 6 4 1]ᵀ[1 4 6 4 1] / 256) blur with ``stride`` on ``(N, C, H, W)``; identity
    for stride 1. ``kernel`` is a persistent buffer because the official files store it.

    Mirrors ``ltx_core.model.upsampler.blur_downsample.BlurDownsample``.
    """

    def __init__(self, stride: int, kernel_size: int = 5) -> None:
        super().__init__()
        self.stride = stride
        row = torch.tensor([math.comb(kernel_size - 1, i) for i in range(kernel_size)], dtype=torch.float64)
        k2d = row[:, None] * row[None, :]
        self.register_buffer("kernel", (k2d / k2d.sum()).float()[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` → ``(N, C, ⌈H/stride⌉, ⌈W/stride⌉)``."""
        if self.stride == 1:
            return x
        c, k = x.shape[1], self.kernel.shape[-1]
        return F.conv2d(x, self.kernel.to(x).expand(c, 1, k, k), stride=self.stride, padding=k // 2, groups=c)


class RationalResampler(nn.Module):
    """Per frame: Conv2d to ``num²·C`` → pixel shuffle ×num → blur + stride ``den`` (scale num/den).

    Mirrors ``ltx_core.model.upsampler.spatial_rational_resampler.SpatialRationalResampler``.
    """

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.num, den = RATIONAL_SCALES[float(scale)]
        self.conv = nn.Conv2d(channels, self.num**2 * channels, 3, padding=1)
        self.blur_down = BlurDownsample(den)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` → ``(N, C, H·num/den, W·num/den)`` (rounded up)."""
        return self.blur_down(pixel_shuffle(self.conv(x), (self.num, self.num)))


def _frames_to_batch(x: torch.Tensor) -> torch.Tensor:
    b, c, f, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)


def _batch_to_frames(x: torch.Tensor, b: int) -> torch.Tensor:
    bf, c, h, w = x.shape
    return x.reshape(b, bf // b, c, h, w).permute(0, 2, 1, 3, 4)


class LatentUpsampler(nn.Module):
    """``(B, C, F, H, W)`` un-normalised latents → upsampled un-normalised latents (see the module table).

    Mirrors ``ltx_core.model.upsampler.model.LatentUpsampler`` (diffusers:
    ``diffusers.pipelines.ltx2.latent_upsampler.LTX2LatentUpsamplerModel``).
    """

    def __init__(self, cfg: UpsamplerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        conv = nn.Conv2d if cfg.dims == 2 else nn.Conv3d
        mid = cfg.mid_channels
        self.initial_conv = conv(cfg.in_channels, mid, 3, padding=1)
        self.initial_norm = nn.GroupNorm(32, mid)
        self.res_blocks = nn.ModuleList(ResBlock(mid, cfg.dims) for _ in range(cfg.num_blocks_per_stage))
        if cfg.temporal_upsample:
            factor = 8 if cfg.spatial_upsample else 2
            self.upsampler: nn.Module = nn.Sequential(nn.Conv3d(mid, factor * mid, 3, padding=1))
            self._shuffle = (2, 2, 2) if cfg.spatial_upsample else (2, 1, 1)
        elif cfg.rational_resampler:
            self.upsampler = RationalResampler(mid, cfg.spatial_scale)
        else:
            self.upsampler = nn.Sequential(nn.Conv2d(mid, 4 * mid, 3, padding=1))
            self._shuffle = (2, 2)
        self.post_upsample_res_blocks = nn.ModuleList(ResBlock(mid, cfg.dims) for _ in range(cfg.num_blocks_per_stage))
        self.final_conv = conv(mid, cfg.in_channels, 3, padding=1)

    def _upsample(self, x: torch.Tensor) -> torch.Tensor:
        """The upsampling stage on ``(B, C, F, H, W)`` (dims 3) or ``(B·F, C, H, W)`` (dims 2)."""
        cfg = self.cfg
        if cfg.temporal_upsample:
            return pixel_shuffle(self.upsampler(x), self._shuffle)[:, :, 1:]  # first latent frame = 1 pixel frame
        per_frame = x.ndim == 5
        b = x.shape[0]
        y = _frames_to_batch(x) if per_frame else x
        y = self.upsampler(y) if cfg.rational_resampler else pixel_shuffle(self.upsampler(y), self._shuffle)
        return _batch_to_frames(y, b) if per_frame else y

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Un-normalised latent ``(B, C, F, H, W)`` → ``(B, C, F, s·H, s·W)`` for a spatial scale ``s``; temporal
        upsampling gives ``(B, C, 2F − 1, H, W)`` latent frames (``2H``, ``2W`` when it is spatial too).

        Raises:
            InputError: ``latent`` is not ``(B, in_channels, F, H, W)``.
        """
        if latent.ndim != 5 or latent.shape[1] != self.cfg.in_channels:
            raise InputError(f"The latent upsampler expects (B, {self.cfg.in_channels}, F, H, W) latents, got "
                             f"{tuple(latent.shape)}.")
        b = latent.shape[0]
        x = _frames_to_batch(latent) if self.cfg.dims == 2 else latent
        x = F.silu(self.initial_norm(self.initial_conv(x)))
        for block in self.res_blocks:
            x = block(x)
        x = self._upsample(x)
        for block in self.post_upsample_res_blocks:
            x = block(x)
        x = self.final_conv(x)
        return _batch_to_frames(x, b) if self.cfg.dims == 2 else x


def upsample_latent(latent: torch.Tensor, upsampler: LatentUpsampler, mean: torch.Tensor,
                    std: torch.Tensor) -> torch.Tensor:
    """Normalised video latent ``(B, C, F, H, W)`` → normalised upsampled latent. ``mean`` / ``std`` ``(C,)`` are the
    video VAE's ``per_channel_statistics`` ``mean-of-means`` / ``std-of-means``.

    Mirrors ``ltx_core.model.upsampler.model.upsample_video`` (which takes the statistics from a ``VideoEncoder``).

    Raises:
        InputError: as :meth:`LatentUpsampler.forward`.
    """
    shape = (1, -1, 1, 1, 1)
    m, s = mean.to(latent).view(shape), std.to(latent).view(shape)
    param = next(upsampler.parameters())
    x = upsampler((latent * s + m).to(param.dtype))
    return (x.to(latent.dtype) - m) / s
