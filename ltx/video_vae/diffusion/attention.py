"""3-D neighbourhood attention of the diffusion video decoder, with its absolute 3-D rotary embedding.

Each query attends to a ``(K_t, K_h, K_w)`` window of keys centred on it where possible and *shifted inward* at the
grid borders, so it always holds exactly ``min(K, size)`` positions per axis — NATTEN ``na3d``'s semantics, which
the reference decoder calls (ltx-core 1.2.0 falls back to ``fallback_na.eager.na3d``, diffusers 0.42.1 builds a
FlexAttention block mask with the same window).

:func:`neighbourhood_attention` computes it with PyTorch SDPA on query tiles: the queries of one tile see the union
of their windows, a boolean mask keeps each one's own window, and tiles whose windows have the same shape relative
to their key block share one mask and go through SDPA together. The softmax runs over exactly the window's keys, so
the result equals a dense masked attention (and NATTEN) up to the order of floating-point sums, with memory bounded
by :data:`SCORE_BUDGET` scores per call instead of ``N²``.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import Triple

#: most attention scores (batch·heads·queries·keys, all tiles of a call) one SDPA call may hold
SCORE_BUDGET = 1 << 24
ROPE_BASE = 10000.0


# --------------------------------------------------------------------------------------------------- rotary
def rope_split(head_dim: int) -> Triple:
    """Channels of a head rotated by the (T, H, W) positions: a quarter (even) to T, the rest halved between H
    and W, both halves even. Mirrors ``ltx_core.model.video_vae.transformer.rope_math.default_rope_dim_split``."""
    d_t = (head_dim // 4) // 2 * 2
    d_hw = (head_dim - d_t) // 2
    if d_hw % 2:
        d_t -= 2
        d_hw = (head_dim - d_t) // 2
    return (d_t, d_hw, d_hw)


def rope_inv_freqs(dim: int, base: float = ROPE_BASE) -> torch.Tensor:
    """``1 / base^(i / dim)`` for even ``i < dim``, computed in float64 and stored as float32 ``(dim / 2,)``.
    Mirrors ``ltx_core.model.video_vae.transformer.rope_math.rope_inv_freqs``."""
    exponents = np.arange(0, dim, 2, dtype=np.float64) / dim
    return torch.from_numpy(1.0 / np.power(float(base), exponents)).to(torch.float32)


def _rotate(x: torch.Tensor, axis: int, inv_freqs: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs ``(2i, 2i+1)`` of ``x`` ``(B, T, H, W, heads, d)`` by the 0-based position along grid
    ``axis`` (1 = T, 2 = H, 3 = W) times ``inv_freqs``; float32 maths, result in ``x``'s dtype."""
    pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    even, odd = pairs[..., 0].float(), pairs[..., 1].float()
    positions = torch.arange(x.shape[axis], dtype=torch.float32, device=x.device)
    shape = [1, 1, 1, 1, 1, inv_freqs.shape[0]]
    shape[axis] = x.shape[axis]
    angles = (positions[:, None] * inv_freqs.to(x.device)[None, :]).reshape(shape)
    cos, sin = angles.cos(), angles.sin()
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).reshape(x.shape).to(x.dtype)


def apply_rope3d(x: torch.Tensor, split: Triple, inv_freqs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Absolute 3-D rotary embedding of ``x`` ``(B, T, H, W, heads, head_dim)``: the first ``split[0]`` channels of
    each head by the frame index, the next ``split[1]`` by the row, the rest by the column (0-based positions of
    this grid: inside a window only relative offsets matter, so a tile's own origin is as good as the video's).

    Mirrors ``ltx_core.model.video_vae.transformer.rope.apply_abs_rope`` (diffusers:
    ``LTX2VideoVaeRotaryPosEmbed3D``).
    """
    d_t, d_h, _ = split
    parts = (x[..., :d_t], x[..., d_t:d_t + d_h], x[..., d_t + d_h:])
    return torch.cat([_rotate(p, axis, f) for p, axis, f in zip(parts, (1, 2, 3), inv_freqs, strict=True)], dim=-1)


# --------------------------------------------------------------------------------------------------- windows
def window_starts(length: int, kernel: int) -> list[int]:
    """First key index of every query's window along one axis of ``length`` (window ``min(kernel, length)``,
    centred, shifted inward at the borders). Mirrors ``fallback_na.eager._window_bounds`` of ltx-core 1.2.0."""
    k = min(kernel, length)
    return [min(max(i - k // 2, 0), length - k) for i in range(length)]


def _axis_tiles(length: int, kernel: int, tile: int) -> list[tuple[slice, slice, tuple[int, ...]]]:
    """Query tiles along one axis: (query slice, key slice = union of their windows, window starts relative to the
    key slice — the tile's mask geometry)."""
    starts, k = window_starts(length, kernel), min(kernel, length)
    out = []
    for q0 in range(0, length, tile):
        q1 = min(q0 + tile, length)
        k0, k1 = starts[q0], starts[q1 - 1] + k
        out.append((slice(q0, q1), slice(k0, k1), tuple(s - k0 for s in starts[q0:q1])))
    return out


def _axis_mask(rel: tuple[int, ...], kernel: int, keys: int, device: torch.device) -> torch.Tensor:
    starts = torch.tensor(rel, device=device)[:, None]
    j = torch.arange(keys, device=device)[None, :]
    return (j >= starts) & (j < starts + kernel)


def _tile_sizes(dims: tuple[int, int, int], kernels: tuple[int, int, int], rows: int) -> list[int]:
    """Query tile lengths per axis: the whole grid, halved along the axis with the most tile per window until
    ``rows · queries · keys`` fits :data:`SCORE_BUDGET` (``rows`` = batch · heads)."""
    tiles = list(dims)

    def cost(t: list[int]) -> int:
        return rows * math.prod(t) * math.prod(min(d, n + k - 1) for d, n, k in zip(dims, t, kernels, strict=True))

    while cost(tiles) > SCORE_BUDGET and max(tiles) > 1:
        axis = max(range(3), key=lambda a: tiles[a] / kernels[a])
        tiles[axis] = max(1, (tiles[axis] + 1) // 2)
    return tiles


def neighbourhood_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel: Triple) -> torch.Tensor:
    """Softmax attention of every query over its ``kernel`` window (module docstring), queries already scaled.

    Args:
        q, k, v: ``(B, T, H, W, heads, head_dim)``.
        kernel: ``(K_t, K_h, K_w)``; an axis shorter than its kernel is attended whole.

    Returns:
        ``(B, T, H, W, heads, head_dim)`` in ``v``'s dtype.

    Mirrors ``natten.na3d(q, k, v, kernel_size, scale=1.0)`` as ltx-core 1.2.0 calls it (and its eager fallback
    ``ltx_core.model.video_vae.transformer.fallback_na.eager.na3d``).
    """
    batch, t, h, w, heads, dim = q.shape
    dims = (t, h, w)
    kernels = tuple(min(kk, d) for kk, d in zip(kernel, dims, strict=True))
    sizes = _tile_sizes(dims, kernels, batch * heads)
    axes = [_axis_tiles(d, kk, s) for d, kk, s in zip(dims, kernels, sizes, strict=True)]
    groups: dict[tuple, list[tuple[tuple[slice, ...], tuple[slice, ...]]]] = defaultdict(list)
    for tt in axes[0]:
        for th in axes[1]:
            for tw in axes[2]:
                geometry = (tt[2], tt[1].stop - tt[1].start, th[2], th[1].stop - th[1].start,
                            tw[2], tw[1].stop - tw[1].start)
                groups[geometry].append(((tt[0], th[0], tw[0]), (tt[1], th[1], tw[1])))
    out = torch.empty(q.shape, dtype=v.dtype, device=q.device)
    for geometry, tiles in groups.items():
        masks = [_axis_mask(geometry[2 * a], kernels[a], geometry[2 * a + 1], q.device) for a in range(3)]
        mask = (masks[0][:, None, None, :, None, None] & masks[1][None, :, None, None, :, None]
                & masks[2][None, None, :, None, None, :])
        qs, _ = tiles[0]
        q_shape = tuple(s.stop - s.start for s in qs)
        nq, nk = math.prod(q_shape), mask.shape[3] * mask.shape[4] * mask.shape[5]
        mask = mask.reshape(nq, nk)
        per_call = max(1, SCORE_BUDGET // max(1, batch * heads * nq * nk))
        for c0 in range(0, len(tiles), per_call):
            chunk = tiles[c0:c0 + per_call]
            g = len(chunk)

            def gather(x: torch.Tensor, which: int, n: int, chunk=chunk, g=g) -> torch.Tensor:
                stacked = torch.stack([x[:, s[which][0], s[which][1], s[which][2]] for s in chunk])
                return stacked.permute(0, 1, 5, 2, 3, 4, 6).reshape(g * batch, heads, n, dim)

            o = F.scaled_dot_product_attention(gather(q, 0, nq), gather(k, 1, nk), gather(v, 1, nk),
                                               attn_mask=mask, scale=1.0)
            o = o.view(g, batch, heads, *q_shape, dim).permute(0, 1, 3, 4, 5, 2, 6)
            for i, (qs, _) in enumerate(chunk):
                out[:, qs[0], qs[1], qs[2]] = o[i]
    return out


# --------------------------------------------------------------------------------------------------- module
class NeighbourhoodAttention(nn.Module):
    """Fused ``qkv`` projection → per-head RMS norm of Q and K (Q then scaled by ``head_dim^-0.5``) → 3-D rotary
    embedding → :func:`neighbourhood_attention` → ``proj``. Keys: ``qkv.{weight,bias}`` ``(3·dim, dim)`` (Q, K, V
    rows in that order, as the official file stores them), ``proj``, ``q_norm``, ``k_norm`` (weights
    ``(head_dim,)``).

    Mirrors ``ltx_core.model.video_vae.transformer.attention.NeighborhoodAttention3D`` (whose loader splits
    ``qkv`` into ``to_q/to_k/to_v``; diffusers: ``LTX2VideoVaeNeighborhoodAttention``).
    """

    def __init__(self, dim: int, kernel: Triple, head_dim: int, base: float = ROPE_BASE) -> None:
        super().__init__()
        self.dim, self.kernel, self.head_dim = dim, tuple(kernel), head_dim
        self.heads = dim // head_dim
        self.scale = head_dim**-0.5
        self.split = rope_split(head_dim)
        self.inv_freqs = tuple(rope_inv_freqs(d, base) for d in self.split)  # not buffers: not in the file
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.q_norm = nn.RMSNorm(head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(head_dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Channels-last ``(B, T, H, W, dim)`` → same shape."""
        batch, t, h, w, _ = x.shape
        shape = (batch, t, h, w, self.heads, self.head_dim)
        q, k, v = (p.reshape(shape) for p in self.qkv(x).chunk(3, dim=-1))
        q = self.q_norm(q) * self.scale
        k = self.k_norm(k)
        q = apply_rope3d(q, self.split, self.inv_freqs)
        k = apply_rope3d(k, self.split, self.inv_freqs)
        out = neighbourhood_attention(q, k, v.contiguous(), self.kernel)
        return self.proj(out.reshape(batch, t, h, w, self.dim))
