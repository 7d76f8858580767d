"""Decode with the diffusion video decoder, untiled or in overlapping tiles blended linearly, memory flat in video
length.

Tiles live on the stage-4 input grid, as in ltx-core 1.2.0's ``DiffusionVideoDecoder._decode_pixels``: one *cell*
is ``s_t`` pixel frames × ``s_h·p`` × ``s_w·p`` pixels (2 × 8 × 8 for the released model: the last upsample's stride
times the patch size). ``TilingConfig`` sizes (pixels, pixel frames) must be whole cells.

* **Stages 1-3** run per temporal tile on a latent window: the frames the tile needs plus :func:`context_frames`
  latent frames on each side (their whole temporal receptive field), over the full frame size. Inside that halo a
  neighbourhood window never reaches the window's edge, so the tile's stage-4 input equals the full-volume one
  (ltx-core runs these stages once on the whole video; the result is the same, the memory is not: ours stays flat
  in video length, at the price of running stages 1-3 on the halos again — 13 latent frames a side for the
  released model, about a quarter more decode work with 80-frame tiles by a FLOP count).
* **Stages 4-5** run per tile in isolation (windows shifted inward at the tile's borders, as in ltx-core); the
  tile's pixels are weighted by linear ramps over the overlaps (weights sum to exactly 1; one tile has weight 1) and
  added up. Only this changes the result, and only near the seams: a pixel farther than stages 4-5's reach from
  every inner tile border equals the untiled decode (float rounding aside), and tiles covering the video give the
  untiled decode bit for bit. The blend tolerance, measured on the tiny random test config (seams every 3 cells,
  8 weight/latent draws; ``tests/test_diffusion_decoder_tiling.py``): max |tiled − untiled| ≤
  :data:`TILED_TOLERANCE` · max |untiled| (measured ≤ 0.163), mean ≤ :data:`TILED_MEAN_TOLERANCE` · mean |untiled|
  (measured ≤ 0.0166). Random weights have no smoothness; the released model's seams are not measured here.
* **Noise**: the stage-5 starting noise is one canvas of the untiled shape (:func:`decode_noise_shape`) drawn once
  from ``generator`` on the generator's device, and every tile takes its slice, so a seed gives the same video tiled
  or not (ltx-core and diffusers draw fresh noise per tile instead). The canvas is the size of the output video; it
  stays on the generator's device (pass a CPU generator to keep it off the GPU).

Units: latent frames in; pixel frames, pixels out. The causal rule holds: ``F`` latent frames → ``8(F−1)+1`` frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from ...errors import InputError
from ..tiling import AxisPlan, TilingConfig, axis_plan, spans
from .config import DiffusionDecoderConfig
from .model import DiffusionVideoDecoder, frames_after, pad_axis

#: 80-frame / 512-px tiles overlapping by stages 4-5's window reach (40 frames / 160 px for the released model), the
#: overlaps ltx-core 1.2.0's ``diffusion_tiling.recommended_pixel_overlaps`` asks for
DEFAULT_DIFFUSION_TILING = TilingConfig(tile_pixels=512, overlap_pixels=160, tile_frames=80, overlap_frames=40)
#: bounds of |tiled − untiled| (module docstring): max over max |untiled|, mean over mean |untiled|
TILED_TOLERANCE = 0.2
TILED_MEAN_TOLERANCE = 0.02


def context_frames(config: DiffusionDecoderConfig) -> int:
    """Latent frames added on each side of a temporal tile's stage 1-3 window: the temporal reach of those
    stages' neighbourhood windows (Σ depth · ⌊K_t/2⌋ / cumulative stride), rounded up, plus one."""
    reach, scale = 0.0, 1
    for i in range(len(config.stage_kernels) - 1):
        reach += config.stage_depths[i] * (config.stage_kernels[i][0] // 2) / scale
        scale *= config.upsample_strides[i][0]
    return math.ceil(reach) + 1


def _cells(config: DiffusionDecoderConfig) -> tuple[int, int, int]:
    st, sh, sw = config.upsample_strides[-1]
    return st, sh * config.patch_size, sw * config.patch_size


def _tile_cells(config: DiffusionDecoderConfig, tiling: TilingConfig | None) -> tuple[int | None, int, int | None,
                                                                                          int]:
    """(temporal tile, overlap, spatial tile, overlap) in cells; None = not tiled on that axis.

    Raises:
        InputError: sizes that are not whole cells, overlaps not smaller than tiles, or tiles below the stage-4/5
            windows (:meth:`TilingConfig.validate`).
    """
    if tiling is None:
        return None, 0, None, 0
    ct, ch, cw = _cells(config)
    tiling.validate(spatial=math.lcm(ch, cw), temporal=ct)
    st = config.upsample_strides[-1]
    mins = [max(config.stage_kernels[-1][a], -(-config.stage5_kernel[a] // st[a])) for a in range(3)]
    t_tile = None if tiling.tile_frames is None else tiling.tile_frames // ct
    s_tile = None if tiling.tile_pixels is None else tiling.tile_pixels // ch
    if t_tile is not None and t_tile < mins[0]:
        raise InputError(f"Diffusion decoder tiles must be at least {mins[0] * ct} frames long (stage 4/5 windows); "
                         f"got {tiling.tile_frames}.")
    if s_tile is not None and s_tile < max(mins[1:]):
        raise InputError(f"Diffusion decoder tiles must be at least {max(mins[1:]) * ch} px (stage 4/5 windows); "
                         f"got {tiling.tile_pixels}.")
    return t_tile, tiling.overlap_frames // ct, s_tile, tiling.overlap_pixels // ch


def _time_plan(cells: int, tile: int | None, overlap: int, stride: int) -> tuple[list[tuple[int, int]], AxisPlan]:
    drop = 1 if stride == 2 else 0
    cell_spans = spans(cells, tile, overlap)
    pixel_spans = [(0 if a == 0 else stride * a - drop, stride * b - drop) for a, b in cell_spans]
    return pixel_spans, axis_plan(cell_spans, pixel_spans)


def _space_plan(cells: int, tile: int | None, overlap: int, px: int) -> tuple[list[tuple[int, int]], AxisPlan]:
    cell_spans = spans(cells, tile, overlap)
    pixel_spans = [(a * px, b * px) for a, b in cell_spans]
    return pixel_spans, axis_plan(cell_spans, pixel_spans)


def _weight(plan: AxisPlan, i: int, axis: int, device: torch.device) -> torch.Tensor:
    shape = [1, 1, 1, 1, 1]
    shape[axis] = -1
    return plan.weights[i].to(device=device, dtype=torch.float32).view(shape)


def _noise_tile(noise: torch.Tensor, start: tuple[int, int, int], size: tuple[int, int, int],
                device: torch.device) -> torch.Tensor:
    """``noise[..., t:t+T, y:y+H, x:x+W]`` on ``device``; frames past the canvas repeat its last one (a trailing
    tile whose context was kept at stage 5's window length)."""
    (t, y, x), (nt, nh, nw) = start, size
    part = noise[:, :, t:t + nt, y:y + nh, x:x + nw]
    return pad_axis(part, 2, 0, nt - part.shape[2]).to(device)


def iter_decode_diffusion_tiled(decoder: DiffusionVideoDecoder, latent: torch.Tensor,
                                tiling: TilingConfig | None = DEFAULT_DIFFUSION_TILING, *,
                                generator: torch.Generator | None = None, noise: torch.Tensor | None = None,
                                steps: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Decode normalised latents ``(B, C, F, H, W)`` tile by tile (module docstring); yields ``(first_frame,
    frames)`` with ``frames`` ``(B, 3, n, 32H, 32W)`` in the decoder's dtype and device, in order, covering
    ``8(F−1)+1`` pixel frames. ``tiling`` None decodes in one tile (:meth:`DiffusionVideoDecoder.forward`).

    ``noise`` ``(B, 3, …)`` of :func:`decode_noise_shape` replaces the draw from ``generator``; ``steps`` overrides
    the config's step count. Mirrors ``DiffusionVideoDecoder.tiled_decode`` of ltx-core 1.2.0 (also a generator of
    temporal chunks).

    Raises:
        InputError: ``latent`` is not ``(B, latent_channels, F, H, W)``, ``noise`` has the wrong shape, ``steps``
            < 1, or ``tiling`` is invalid for this decoder (:func:`_tile_cells`).
    """
    cfg = decoder.config
    t_tile, t_overlap, s_tile, s_overlap = _tile_cells(cfg, tiling)
    x, pads = decoder.prepare(latent)
    noise = decoder.start_noise(tuple(latent.shape), generator, noise)
    ref = next(decoder.parameters())
    batch, _c, frames, height, width = latent.shape
    shape = tuple(noise.shape)

    strides = [s[0] for s in cfg.upsample_strides[:-1]]
    per_latent = math.prod(strides)
    cells_t = frames_after(frames + pads[0], strides)
    cells_total = frames_after(x.shape[2], strides)
    space = [math.prod(s[a] for s in cfg.upsample_strides[:-1]) for a in (1, 2)]
    ct, ch, cw = _cells(cfg)
    t_spans, t_plan = _time_plan(cells_t, t_tile, t_overlap, ct)
    h_spans, h_plan = _space_plan(x.shape[3] * space[0], s_tile, s_overlap, ch)
    w_spans, w_plan = _space_plan(x.shape[4] * space[1], s_tile, s_overlap, cw)
    halo = context_frames(cfg) if len(t_spans) > 1 else x.shape[2]
    out_frames = 1 + cfg.temporal_upsampling * (frames - 1)
    px = cfg.spatial_upsampling
    crop_h = slice(pads[1] // 2 * px, (pads[1] // 2 + height) * px)
    crop_w = slice(pads[2] // 2 * px, (pads[2] // 2 + width) * px)
    buffer: torch.Tensor | None = None
    for ti, (c0, c1) in enumerate(t_plan.spans):
        first, trailing = c0 == 0, c1 == cells_t
        end = cells_total if trailing else c1
        w0 = max(0, -(-c0 // per_latent) - halo)
        w1 = min(x.shape[2], -(-(end - 1) // per_latent) + 1 + halo)
        offset = 0 if w0 == 0 else frames_after(w0, strides)
        feats = decoder.features(x[:, :, w0:w1], first=w0 == 0)[:, c0 - offset:end - offset]
        p0, p1 = t_spans[ti]
        grown = torch.zeros((batch, cfg.out_channels, p1 - p0, *shape[3:]), device=ref.device, dtype=torch.float32)
        if buffer is not None:
            grown[:, :, :buffer.shape[2]] = buffer
        buffer, grown = grown, None
        wt = _weight(t_plan, ti, 2, ref.device)
        for hi, (a0, a1) in enumerate(h_plan.spans):
            wh = _weight(h_plan, hi, 3, ref.device)
            for wi, (b0, b1) in enumerate(w_plan.spans):
                context = decoder.context(feats[:, :, a0:a1, b0:b1], first=first, trailing=trailing)
                size = (context.shape[1], context.shape[2] * cfg.patch_size, context.shape[3] * cfg.patch_size)
                start = (p0, h_spans[hi][0], w_spans[wi][0])
                pixels = decoder.denoise(context, _noise_tile(noise, start, size, ref.device), steps)
                del context
                pixels = pixels[:, :, :p1 - p0].float() * (wt * wh * _weight(w_plan, wi, 4, ref.device))
                (y_0, y_1), (x_0, x_1) = h_spans[hi], w_spans[wi]
                buffer[:, :, :, y_0:y_1, x_0:x_1] += pixels
                del pixels
        del feats
        done = t_spans[ti + 1][0] if ti + 1 < len(t_spans) else p1
        if p0 < out_frames:
            yield p0, buffer[:, :, :min(done, out_frames) - p0, crop_h, crop_w].to(ref.dtype)
        buffer = buffer[:, :, done - p0:].clone() if done < p1 else None


def decode_diffusion_tiled(decoder: DiffusionVideoDecoder, latent: torch.Tensor,
                           tiling: TilingConfig | None = DEFAULT_DIFFUSION_TILING, *,
                           generator: torch.Generator | None = None, noise: torch.Tensor | None = None,
                           steps: int | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """Tiled decode into ``out`` (allocated on the decoder's device and dtype when None); see
    :func:`iter_decode_diffusion_tiled`. Returns ``(B, 3, 8(F−1)+1, 32H, 32W)``.

    Raises:
        InputError: ``out`` has the wrong shape, or as :func:`iter_decode_diffusion_tiled`.
    """
    cfg = decoder.config
    decoder.check_latent(latent)
    batch, _c, frames, height, width = latent.shape
    px = cfg.spatial_upsampling
    shape = (batch, cfg.out_channels, 1 + cfg.temporal_upsampling * (frames - 1), height * px, width * px)
    ref = next(decoder.parameters())
    if out is None:
        out = torch.empty(shape, device=ref.device, dtype=ref.dtype)
    elif tuple(out.shape) != shape:
        raise InputError(f"decode_diffusion_tiled: `out` has shape {tuple(out.shape)}, the decoded video is {shape}.")
    with torch.inference_mode():
        for first, chunk in iter_decode_diffusion_tiled(decoder, latent, tiling, generator=generator, noise=noise,
                                                        steps=steps):
            out[:, :, first:first + chunk.shape[2]] = chunk
            del chunk
    return out
