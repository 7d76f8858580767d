"""Peak bytes of LTX-2.5's diffusion video decode, tiled as the pipeline runs it: a count of what is alive at each
phase, read from :mod:`rs_ltxv.ltx.video_vae.diffusion` (``tiled.py``, ``model.py``, ``blocks.py``,
``attention.py``).

Units below are ``u = N·D·e`` (tokens × width × element bytes) of the block being run; ``e`` is the decoder's
element size, float32 buffers count 4 bytes.

* A neighbourhood-attention block (:class:`~..video_vae.diffusion.blocks.NABlock`) above its input: the normed
  input, the fused ``qkv`` (3), q and k after their norms (2), a contiguous v, the kernel's output (8 in all) plus
  the per-call scratch of :func:`~..video_vae.diffusion.attention.neighbourhood_attention` (the bool mask of a
  query tile, the gathered q, k, v of the tiles of one SDPA call, bounded by ``SCORE_BUDGET`` scores); or while
  the rotary embedding is applied, 6 + the finished parts and the float32 temporaries of the widest part; or the
  SwiGLU: the mid-block state and its normed copy (2) + three hidden-width tensors of at most ``MLP_TOKENS``
  tokens (+ the output when sliced). The denoising block
  (:class:`~..video_vae.diffusion.blocks.DiffusionNABlock`) holds one more state (the input plus the projected
  context).
* Stages 1-3 run on a temporal tile's latent window (the tile's frames plus ``context_frames`` a side) over the
  whole frame; their output (the stage-4 input, ``feats``) stays alive while the tile's spatial tiles run stage 4
  (whose pixel-shuffle holds the projection and its rearranged copy), then stage 5: patchified noise → tokens →
  blocks with the context → ``conv_out`` → unpatchified pixels (3 pixel-tile copies at the end).
* The temporal tile's float32 blend buffer (its pixel frames × the whole frame) lives across its spatial tiles; the
  weighted float32 copy of each tile's pixels is added into it; the finished frames are cast to the decoder's dtype
  once and copied into the output; the overlap is cloned for the next tile.
* Growing with the video: the output video and the stage-5 noise canvas (both the whole video, decoder dtype,
  :func:`~..video_vae.diffusion.decode_noise_shape`) and the edge-padded latent. Everything else is per tile: once
  the windows reach their full length (about 37 latent frames for the released model and 80-frame tiles), flat in
  video length.

Not counted: kernel workspaces (CUDA's SDPA turns the bool mask into a float one of ``queries × keys`` per call,
at most ``SCORE_BUDGET`` / heads elements) — inside the planner's reserve. Checked against live-tensor peaks
(:mod:`.measure`) of tiny decoders and of the released shape at an eighth of its widths, float32 and bfloat16, one
tile and many (``tests/test_plan_diffusion.py``: within 0.2 %); not measured on the released model on a GPU.
No ltx-core counterpart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from ..video_vae.diffusion import DEFAULT_DIFFUSION_TILING, DiffusionDecoderConfig, blocks, context_frames
from ..video_vae.diffusion import attention as na
from ..video_vae.diffusion.attention import rope_split
from ..video_vae.diffusion.model import decode_noise_shape, frames_after
from ..video_vae.diffusion.tiled import _space_plan, _tile_cells, _time_plan
from ..video_vae.tiling import TilingConfig

FP32 = 4
Grid = tuple[int, int, int]


@dataclass(frozen=True)
class DiffusionDecodePeak:
    """The diffusion decode's predicted peak, split in what grows with the video and what a tile adds.

    Attributes:
        activations: bytes a tile's work holds at its peak (blend buffer, stage-4 input, block activations);
            flat in video length once the tiles' windows are full.
        video: bytes of the output video, the stage-5 noise canvas and the padded latent (the whole video).
        phase: where the tile peak is ("stage 5 attention", "blend", …).
        tiles: number of tiles (temporal × spatial).
    """

    activations: int
    video: int
    phase: str
    tiles: int

    @property
    def peak(self) -> int:
        """``activations + video``, bytes."""
        return self.activations + self.video


def _attention_scratch(grid: Grid, batch: int, dim: int, head_dim: int, kernel: Grid, e: int) -> int:
    """Bytes one :func:`~..video_vae.diffusion.attention.neighbourhood_attention` call holds besides its inputs and
    output, walking its query tiles as it does: per tile geometry a bool ``queries × keys`` mask (built while the
    last one is alive), per SDPA call the gathered q, k, v of its tiles (one gather's transient copy) and the
    kernel's output, while the last call's output is still alive."""
    kernels = tuple(min(k, d) for k, d in zip(kernel, grid, strict=True))
    rows = batch * (dim // head_dim)
    sizes = na._tile_sizes(grid, kernels, rows)  # the attention's own query tiling (private)
    axes = [na._axis_tiles(d, k, s) for d, k, s in zip(grid, kernels, sizes, strict=True)]
    groups: dict[tuple, list[int]] = {}
    for tt in axes[0]:
        for th in axes[1]:
            for tw in axes[2]:
                key = tuple((t[2], t[1].stop - t[1].start) for t in (tt, th, tw))
                nq = math.prod(t[0].stop - t[0].start for t in (tt, th, tw))
                groups.setdefault(key, [nq, math.prod(n for _r, n in key), 0])[2] += 1
    peak = last_mask = last_out = 0
    for nq, nk, count in groups.values():
        mask = nq * nk
        peak = max(peak, last_mask + last_out + mask)
        per_call = min(count, max(1, na.SCORE_BUDGET // max(1, rows * nq * nk)))
        q, k = per_call * batch * nq * dim * e, per_call * batch * nk * dim * e
        call = q + max(3 * k, 2 * k + q)
        peak = max(peak, mask + last_out + call, mask + (q + call if count > per_call else 0))
        last_mask, last_out = mask, batch * nq * dim * e * (count - per_call * (-(-count // per_call) - 1))
    return peak


def _rope_units(head_dim: int, e: int) -> float:
    """Peak of applying the 3-D rotary embedding to q or k, in units of that tensor, above it: the finished parts
    and, for the part being rotated, its float32 even/odd copies (none in float32) and four float32 products; at the
    end the parts and their concatenation (2)."""
    done, peak = 0.0, 2.0
    for d in rope_split(head_dim):
        frac = d / head_dim
        half = frac * 2 / e  # one float32 tensor of the part's even (or odd) channels
        peak = max(peak, done + (2 * half if e != FP32 else 0.0) + 4 * half)
        done += frac
    return peak


def _mlp_bytes(tokens: int, dim: int, hidden: int, e: int) -> int:
    """The SwiGLU's working set above its (normed) input: three hidden-width tensors of at most ``MLP_TOKENS``
    tokens, plus the output buffer when it is sliced."""
    chunk = min(tokens, blocks.MLP_TOKENS)
    return 3 * chunk * hidden * e + (tokens * dim * e if tokens > blocks.MLP_TOKENS else 0)


def block_bytes(cfg: DiffusionDecoderConfig, grid: Grid, batch: int, dim: int, kernel: Grid, e: int,
                denoising: bool = False) -> tuple[int, str]:
    """Peak bytes one neighbourhood-attention block adds above its input on a ``grid`` ``(T, H, W)`` of tokens of
    width ``dim`` (``denoising``: a stage-5 :class:`~..video_vae.diffusion.blocks.DiffusionNABlock`, one more state
    alive), and the phase ("attention", "rope", "mlp")."""
    tokens = batch * math.prod(grid)
    u = tokens * dim * e
    extra = u if denoising else 0
    phases = {
        "attention": extra + 8 * u + _attention_scratch(grid, batch, dim, cfg.head_dim, kernel, e),
        "rope": extra + int((6 + _rope_units(cfg.head_dim, e)) * u),
        "mlp": 2 * u + _mlp_bytes(tokens, dim, cfg.mlp_hidden(dim), e),
    }
    phase = max(phases, key=phases.get)
    return phases[phase], phase


def _upsampled(grid: Grid, stride: Grid, first: bool) -> tuple[Grid, Grid]:
    """(grid after the pixel shuffle before the first frame is dropped, grid after)."""
    raw = (grid[0] * stride[0], grid[1] * stride[1], grid[2] * stride[2])
    return raw, (raw[0] - (1 if stride[0] == 2 and first else 0), raw[1], raw[2])


def features_bytes(cfg: DiffusionDecoderConfig, frames: int, height: int, width: int, batch: int, e: int,
                   first: bool) -> tuple[int, int, str]:
    """Stages 1-3 on a latent window of ``frames × height × width``: (peak bytes, bytes of their output — the
    stage-4 input, which stays alive — and the phase)."""
    grid: Grid = (frames, height, width)
    tokens = batch * math.prod(grid)
    latent = tokens * cfg.latent_channels * e
    best = (2 * latent, "stage 1 input")
    x_bytes = tokens * cfg.stage_channels[0] * e
    best = max(best, (latent + x_bytes, "stage 1 input"))
    for s in range(len(cfg.stage_kernels) - 1):
        dim = cfg.stage_channels[s]
        ws, phase = block_bytes(cfg, grid, batch, dim, cfg.stage_kernels[s], e)
        best = max(best, (x_bytes + ws, f"stage {s + 1} {phase}"))
        raw, grid = _upsampled(grid, cfg.upsample_strides[s], first)
        out = batch * math.prod(raw) * cfg.stage_channels[s + 1] * e
        best = max(best, (x_bytes + 2 * out, f"stage {s + 1} upsample"))
        x_bytes = out
    return best[0], x_bytes, best[1]


def _stage4_and_5(cfg: DiffusionDecoderConfig, grid4: Grid, batch: int, e: int, first: bool, trailing: bool
                  ) -> tuple[list[tuple[int, str]], int, int]:
    """Stage 4 on one spatial tile and stage 5 on its context: ([(bytes above what the tile loop holds, phase)],
    pixel-tile bytes, pixel frames of the tile)."""
    d4, ctx_dim, c5 = cfg.stage_channels[-2], cfg.stage_channels[-1], cfg.stage5_channels
    u4 = batch * math.prod(grid4) * d4 * e
    ws4, phase4 = block_bytes(cfg, grid4, batch, d4, cfg.stage_kernels[-1], e)
    raw, grid5 = _upsampled(grid4, cfg.upsample_strides[-1], first)
    context = batch * math.prod(raw) * ctx_dim * e
    if trailing and cfg.trailing_pad_frames:
        ghost = cfg.trailing_pad_frames * cfg.temporal_upsampling
        grid5 = (min(grid5[0], max(grid5[0] - ghost, 1, cfg.stage5_kernel[0])), grid5[1], grid5[2])
    u5 = batch * math.prod(grid5) * c5 * e
    pixels = batch * cfg.out_channels * math.prod(grid5) * cfg.patch_size**2 * e
    ws5, phase5 = block_bytes(cfg, grid5, batch, c5, cfg.stage5_kernel, e, denoising=True)
    phases = [
        ((u4 if cfg.stage_depths[-2] > 1 else 0) + ws4, f"stage 4 {phase4}"),
        (u4 + 2 * context, "stage 4 upsample"),
        (context + pixels + u5, "stage 5 input"),
        (context + u5 + ws5, f"stage 5 {phase5}"),
        (context + 2 * u5 + pixels, "stage 5 output"),
        (context + 3 * pixels, "stage 5 output"),
    ]
    return phases, pixels, grid5[0]


@lru_cache(maxsize=512)
def _features_cached(cfg: DiffusionDecoderConfig, frames: int, height: int, width: int, batch: int, e: int,
                     first: bool, _limits: tuple[int, int]) -> tuple[int, int, str]:
    return features_bytes(cfg, frames, height, width, batch, e, first)


@lru_cache(maxsize=512)
def _tile_cached(cfg: DiffusionDecoderConfig, grid4: Grid, batch: int, e: int, first: bool, trailing: bool,
                 _limits: tuple[int, int]) -> tuple[list[tuple[int, str]], int, int]:
    return _stage4_and_5(cfg, grid4, batch, e, first, trailing)


def diffusion_decode_peak(cfg: DiffusionDecoderConfig, latent_shape: tuple[int, ...],
                          tiling: TilingConfig | None = DEFAULT_DIFFUSION_TILING, element_size: int = 2
                          ) -> DiffusionDecodePeak:
    """Predicted peak of :func:`~..video_vae.diffusion.decode_diffusion_tiled` (output allocated by it, noise drawn
    on the decoder's device) for normalised latents of ``latent_shape`` ``(B, C, F, H, W)`` in ``tiling`` (None: one
    tile), at ``element_size`` bytes per element of the decoder's dtype. Walks the same tiles the decode does.

    Raises:
        InputError: ``tiling`` is invalid for this decoder (as the decode raises it).
    """
    e = element_size
    batch, _c, frames, height, width = latent_shape
    mins = cfg.min_latent_size
    pads = (max(0, mins[0] - frames), max(0, mins[1] - height), max(0, mins[2] - width))
    fx, hx, wx = frames + pads[0] + cfg.trailing_pad_frames, height + pads[1], width + pads[2]
    noise = decode_noise_shape(cfg, tuple(latent_shape))
    px = cfg.spatial_upsampling
    out_frames = 1 + cfg.temporal_upsampling * (frames - 1)
    video = (math.prod(noise) + batch * cfg.out_channels * out_frames * height * px * width * px
             + batch * cfg.latent_channels * fx * hx * wx) * e
    frame_bytes = batch * cfg.out_channels * noise[3] * noise[4] * FP32  # one float32 frame of the blend buffer

    t_tile, t_overlap, s_tile, s_overlap = _tile_cells(cfg, tiling)
    strides = [s[0] for s in cfg.upsample_strides[:-1]]
    per_latent = math.prod(strides)
    cells_t, cells_total = frames_after(frames + pads[0], strides), frames_after(fx, strides)
    space = [math.prod(s[a] for s in cfg.upsample_strides[:-1]) for a in (1, 2)]
    ct, ch, cw = cfg.upsample_strides[-1][0], cfg.upsample_strides[-1][1] * cfg.patch_size, \
        cfg.upsample_strides[-1][2] * cfg.patch_size
    t_spans, t_plan = _time_plan(cells_t, t_tile, t_overlap, ct)
    _h, h_plan = _space_plan(hx * space[0], s_tile, s_overlap, ch)
    _w, w_plan = _space_plan(wx * space[1], s_tile, s_overlap, cw)
    halo = context_frames(cfg) if len(t_spans) > 1 else fx
    limits = (blocks.MLP_TOKENS, na.SCORE_BUDGET)  # part of the cache keys: both are read at call time
    best, leftover = (0, ""), 0
    for ti, (c0, c1) in enumerate(t_plan.spans):
        first, trailing = c0 == 0, c1 == cells_t
        end = cells_total if trailing else c1
        w0 = max(0, -(-c0 // per_latent) - halo)
        w1 = min(fx, -(-(end - 1) // per_latent) + 1 + halo)
        feat_peak, feats, feat_phase = _features_cached(cfg, w1 - w0, hx, wx, batch, e, w0 == 0, limits)
        p0, p1 = t_spans[ti]
        buffer = (p1 - p0) * frame_bytes
        best = max(best, (leftover + feat_peak, feat_phase), (leftover + feats + buffer, "blend buffer"))
        for a0, a1 in h_plan.spans:
            for b0, b1 in w_plan.spans:
                phases, pixels, tile_frames = _tile_cached(cfg, (end - c0, a1 - a0, b1 - b0), batch, e, first,
                                                           trailing, limits)
                kept = min(tile_frames, p1 - p0) * pixels // max(1, tile_frames)  # pixels[:, :, :p1 - p0]
                # pixels, their float32 copy, the (T, H, W) blend weights and the weighted copy
                blend = pixels + (kept * FP32 // e if e != FP32 else 0) + kept * FP32 // (e * cfg.out_channels) \
                    + kept * FP32 // e
                for part, phase in [*phases, (blend, "blend")]:
                    best = max(best, (feats + buffer + part, phase))
        done = t_spans[ti + 1][0] if ti + 1 < len(t_spans) else p1
        shown = max(0, min(done, out_frames) - p0)
        chunk = batch * cfg.out_channels * shown * height * px * width * px * e if e != FP32 else 0
        leftover = (p1 - done) * frame_bytes
        best = max(best, (buffer + chunk, "blend"), (buffer + leftover, "blend"))
    tiles = len(t_plan.spans) * len(h_plan.spans) * len(w_plan.spans)
    return DiffusionDecodePeak(best[0], video, best[1], tiles)
