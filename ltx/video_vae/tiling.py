"""Tile plans for tiled VAE encode/decode: where tiles go along each axis, their blend weights, and tile sizes
chosen from a memory budget.

Tiles are laid out in *latent* units on each axis (time, height, width); the plan is the Cartesian product of the
per-axis spans, so the blend weights are separable and are normalised per axis: a voxel's weights over all tiles
sum to exactly 1, no weight buffer is needed, and a single tile has weight exactly 1 (tiling with tiles ≥ the input
reproduces the untiled result bit for bit). Inside an overlap the weights ramp linearly (trapezoidal windows),
except along time when encoding: the encoder is causal, so a tile's latents depend on where it starts but not on
where it ends, and the earlier tile keeps the overlap (the later tile's first latents only warm it up).

Units: ``tile_pixels`` / ``overlap_pixels`` are pixels (multiples of the 32-pixel latent cell); ``tile_frames`` /
``overlap_frames`` are pixel frames (multiples of 8). Temporal tiles must overlap by at least 16 frames (2 latent
frames): decoding latent frames one at a time gives a visible jump every 8 frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError
from .config import STRIDES, VideoVAEConfig

MIN_TEMPORAL_OVERLAP_FRAMES = 16


@dataclass(frozen=True)
class TilingConfig:
    """Tile sizes: ``tile_pixels`` / ``overlap_pixels`` in pixels, ``tile_frames`` / ``overlap_frames`` in pixel
    frames. ``None`` turns tiling off on that axis. Defaults: 512 px tiles with 64 px overlap, 64-frame tiles with 24
    frames of overlap.

    Mirrors ``ltx_core.model.video_vae.tiling.TilingConfig`` (its ``SpatialTilingConfig`` and
    ``TemporalTilingConfig`` in one object; the defaults are ``TilingConfig.default()``'s).
    """

    tile_pixels: int | None = 512
    overlap_pixels: int = 64
    tile_frames: int | None = 64
    overlap_frames: int = 24

    def validate(self, spatial: int = 32, temporal: int = 8) -> None:
        """Check the sizes against a VAE of ``spatial`` pixels per latent cell and ``temporal`` frames per latent
        frame.

        Raises:
            InputError: sizes that are not whole latent cells / frames, tiles under 2 cells, temporal overlaps under
                16 frames, or overlaps not smaller than their tiles.
        """
        if self.tile_pixels is not None:
            if self.tile_pixels % spatial or self.overlap_pixels % spatial or self.overlap_pixels < 0:
                raise InputError(f"Spatial tiles and overlaps are whole latent cells: multiples of {spatial} pixels "
                                 f"(got tile {self.tile_pixels}, overlap {self.overlap_pixels}).")
            if self.tile_pixels < 2 * spatial:
                raise InputError(f"Spatial tiles must be at least 2 latent cells ({2 * spatial} px) wide "
                                 f"(got {self.tile_pixels}); reflect padding needs 2 cells.")
            if self.overlap_pixels >= self.tile_pixels:
                raise InputError(f"The spatial overlap ({self.overlap_pixels} px) must be smaller than the tile "
                                 f"({self.tile_pixels} px).")
        if self.tile_frames is not None:
            if self.tile_frames % temporal or self.overlap_frames % temporal:
                raise InputError(f"Temporal tiles and overlaps are whole latent frames: multiples of {temporal} "
                                 f"frames (got tile {self.tile_frames}, overlap {self.overlap_frames}).")
            if self.overlap_frames < MIN_TEMPORAL_OVERLAP_FRAMES:
                raise InputError(f"Temporal tiles must overlap by at least {MIN_TEMPORAL_OVERLAP_FRAMES} frames "
                                 f"(got {self.overlap_frames}); shorter overlaps leave a visible jump at each seam.")
            if self.overlap_frames >= self.tile_frames:
                raise InputError(f"The temporal overlap ({self.overlap_frames} frames) must be shorter than the "
                                 f"tile ({self.tile_frames} frames).")


@dataclass(frozen=True)
class AxisPlan:
    """Tiles along one axis: latent spans ``[start, stop)`` and each tile's weights over its *output* extent
    (``(stop_out − start_out,)`` float64 each). ltx-core keeps the same in
    ``ltx_core.model.video_vae.tiling.DimensionIntervals`` plus per-tile masks."""

    spans: tuple[tuple[int, int], ...]
    weights: tuple[torch.Tensor, ...]  # (output length,) float64, summing to 1 over tiles at every position


def spans(length: int, tile: int | None, overlap: int) -> list[tuple[int, int]]:
    """Tile ``[0, length)`` with tiles of ``tile`` (all full size; the last one is aligned to the end) that overlap by
    at least ``overlap``. One tile when ``tile`` is None or ≥ ``length``. All in latent units.

    Plays the part of ``ltx_core.model.video_vae.video_vae.split_with_symmetric_overlaps`` /
    ``split_temporal_latents``.
    """
    if tile is None or tile >= length:
        return [(0, length)]
    stride = tile - overlap
    out = []
    start = 0
    while start + tile < length:
        out.append((start, start + tile))
        start += stride
    out.append((length - tile, length))
    return out


def _ramps(out_spans: list[tuple[int, int]], causal: bool = False) -> list[torch.Tensor]:
    """Trapezoidal weights (before normalisation) of tiles at output spans: linear ramps over each overlap. With
    ``causal`` the earlier tile keeps the whole overlap (weight 0 for the later one there): a causal encoder's outputs
    do not depend on where a tile ends, only on where it starts, so the earlier tile's values are the better ones."""
    weights = []
    for i, (s, e) in enumerate(out_spans):
        w = torch.ones(e - s, dtype=torch.float64)
        if i > 0 and out_spans[i - 1][1] > s:
            n = out_spans[i - 1][1] - s
            w[:n] *= 0.0 if causal else torch.arange(1, n + 1, dtype=torch.float64) / (n + 1)
        if causal:
            weights.append(w)
            continue
        if i + 1 < len(out_spans) and out_spans[i + 1][0] < e:
            n = e - out_spans[i + 1][0]
            w[e - s - n:] *= torch.arange(n, 0, -1, dtype=torch.float64) / (n + 1)
        weights.append(w)
    return weights


def axis_plan(latent_spans: list[tuple[int, int]], out_spans: list[tuple[int, int]],
              causal: bool = False) -> AxisPlan:
    """Normalise the ramps so that the weights of all tiles sum to 1 at every output position.

    ``latent_spans`` / ``out_spans``: the same tiles in latent and output units. Mirrors
    ``ltx_core.model.video_vae.tiling.compute_trapezoidal_mask_1d`` (ltx-core normalises by an accumulated weight
    buffer instead).
    """
    raw = _ramps(out_spans, causal)
    total = torch.zeros(max(e for _, e in out_spans), dtype=torch.float64)
    for (s, e), w in zip(out_spans, raw, strict=True):
        total[s:e] += w
    weights = tuple(w / total[s:e] for (s, e), w in zip(out_spans, raw, strict=True))
    return AxisPlan(tuple(latent_spans), weights)


def time_out_span(a: int, b: int, temporal: int) -> tuple[int, int]:
    """Pixel frames of latent frames ``[a, b)`` decoded on their own: ``[8a, 8(b−1) + 1)`` (the first latent frame
    of a clip decodes to one frame, which is the last frame of that latent's group in the full video).

    Mirrors ``ltx_core.model.video_vae.video_vae.map_temporal_interval_to_frame``.
    """
    return (temporal * a, temporal * (b - 1) + 1)


def plan_axes(latent_shape: tuple[int, ...], tiling: TilingConfig, spatial: int, temporal: int,
              decode: bool) -> tuple[AxisPlan, AxisPlan, AxisPlan]:
    """Per-axis plans (time, height, width) for a latent grid ``(…, F', H', W')``. Output units are pixels/frames
    when ``decode``, latent cells otherwise. Plays the part of ``ltx_core.model.video_vae.tiling.create_tiles``.

    Raises:
        InputError: ``tiling`` is invalid (:meth:`TilingConfig.validate`).
    """
    tiling.validate(spatial, temporal)
    f, h, w = latent_shape[-3:]
    t_tile = None if tiling.tile_frames is None else tiling.tile_frames // temporal
    t_spans = spans(f, t_tile, tiling.overlap_frames // temporal)
    s_tile = None if tiling.tile_pixels is None else tiling.tile_pixels // spatial
    s_overlap = tiling.overlap_pixels // spatial
    h_spans, w_spans = spans(h, s_tile, s_overlap), spans(w, s_tile, s_overlap)
    if decode:
        t_out = [time_out_span(a, b, temporal) for a, b in t_spans]
        h_out = [(a * spatial, b * spatial) for a, b in h_spans]
        w_out = [(a * spatial, b * spatial) for a, b in w_spans]
    else:
        t_out, h_out, w_out = t_spans, h_spans, w_spans
    # The encoder is causal in time: overlapping latents are taken from the earlier tile.
    return axis_plan(t_spans, t_out, causal=not decode), axis_plan(h_spans, h_out), axis_plan(w_spans, w_out)


# ----------------------------------------------------------------------------------------- memory-budget choice
# Peak live bytes of one decoder forward ≈ ACTIVATION_FACTOR × (largest activation, conv_out's output included): a
# conv's input, its time-padded copy, its output and the residual branch are alive together. Calibrated with the torch
# memory timeline on the tiny test configs (benchmarks/vae_memory.py: measured peak / largest activation ≈ 3.5) and
# rounded up; not measured on the full-size model.
ACTIVATION_FACTOR = 4.0


def decoder_peak_elements(config: VideoVAEConfig, frames: int, height: int, width: int) -> int:
    """The largest activation (elements per batch item) while decoding a ``frames × height × width`` latent tile
    (latent frames and cells). No ltx-core counterpart."""
    channels = config.decoder_base_channels * 8
    t, s = frames, 1
    biggest = max(config.latent_channels, channels) * t * height * width
    for spec in reversed(config.decoder_blocks):
        if spec.name in STRIDES:
            st, ss = STRIDES[spec.name]
            reduction = spec.multiplier or 1
            biggest = max(biggest, channels * st * ss * ss // reduction * t * (s * height) * (s * width))
            channels //= reduction
            t, s = st * t - (st - 1), s * ss
        elif spec.name == "res_x_y":
            channels //= spec.multiplier or 2
        biggest = max(biggest, channels * t * (s * height) * (s * width))
    out = config.out_channels * config.patch_size**2 * t * (s * height) * (s * width)
    return max(biggest, out)


def estimate_decode_bytes(config: VideoVAEConfig, frames: int, height: int, width: int, *, batch: int = 1,
                          element_size: int = 4, full_width: int | None = None) -> int:
    """Estimated peak bytes of decoding one ``frames × height × width`` latent tile (+ the blend buffer of a temporal
    tile ``full_width`` latent cells wide); ``element_size`` in bytes. No ltx-core counterpart."""
    act = ACTIVATION_FACTOR * decoder_peak_elements(config, frames, height, width)
    px = config.decoder_spatial_upsampling
    out_frames = 1 + config.decoder_temporal_upsampling * (frames - 1)
    buffer = config.out_channels * out_frames * (height * px) * ((full_width or width) * px) * 2
    return int(batch * element_size * (act + buffer))


def auto_tiling(config: VideoVAEConfig, latent_shape: tuple[int, ...], budget_bytes: int,
                element_size: int = 4) -> TilingConfig:
    """The largest tiles whose estimated decode peak fits ``budget_bytes``: spatial tiles shrink first (to 4 latent
    cells), then temporal ones (to 4 latent frames); overlaps are 2 latent cells / 2 latent frames. When even the
    smallest tiles do not fit, the smallest tiles are returned (the budget is then exceeded).

    ``latent_shape`` is ``(B, C, F', H', W')``; ``budget_bytes`` and ``element_size`` in bytes. No ltx-core
    counterpart (ltx-core takes fixed tile sizes).
    """
    batch, _c, f, h, w = latent_shape
    sp, tp = config.decoder_spatial_upsampling, config.decoder_temporal_upsampling
    t_tile, s_tile = f, max(h, w)
    min_t, min_s = min(f, 4), min(max(h, w), 4)

    def fits(t: int, s: int) -> bool:
        return estimate_decode_bytes(config, t, min(s, h), min(s, w), batch=batch, element_size=element_size,
                                     full_width=w) <= budget_bytes

    while not fits(t_tile, s_tile) and (t_tile > min_t or s_tile > min_s):
        if s_tile > min_s:
            s_tile = max(min_s, s_tile // 2)
        else:
            t_tile = max(min_t, t_tile // 2)
    spatial = None if s_tile >= max(h, w) else s_tile * sp
    temporal = None if t_tile >= f else t_tile * tp
    return TilingConfig(tile_pixels=spatial, overlap_pixels=min(2, s_tile - 1) * sp, tile_frames=temporal,
                        overlap_frames=2 * tp if temporal else 24)
