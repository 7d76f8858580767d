"""Rotary position embeddings of LTX-2 on fractional, multi-axis positions.

Positions are ``(B, n_axes, T, 2)`` ``[start, end)`` bounds per token (video: seconds, pixels, pixels; audio:
seconds); the middle of each bound is divided by ``max_pos`` per axis, mapped to ``[-1, 1]`` and multiplied by a
frequency grid ``θ^linspace(0, 1, K)·π/2`` with ``K = dim // (2·n_axes)`` (built in float64 like
``ltx_core.model.transformer.rope.generate_freq_grid_np`` when ``double_precision``). Frequencies are ordered
frequency-major, axis-minor, and the missing ``dim/2 − K·n_axes`` entries are padded at the front with the identity
rotation (cos 1, sin 0). Mirrors ``ltx_core.model.transformer.rope`` (diffusers:
``diffusers.models.transformers.transformer_ltx2.LTX2AudioVideoRotaryPosEmbed``).

Layouts:
    split       — cos/sin ``(B, H, T, D/2)``; each head's first and second halves form the rotation pairs.
    interleaved — cos/sin ``(B, T, H·D)``; adjacent channels form the pairs (legacy checkpoints).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..config import RopeLayout
from ..errors import InputError


@dataclass(frozen=True)
class RopeTables:
    """Cos/sin tables for one set of tokens: ``(B, H, T, D/2)`` each for the split layout, ``(B, T, H·D)`` for the
    interleaved one. ltx-core passes the same pair as a ``(cos, sin)`` tuple (``precompute_freqs_cis``'s result)."""

    cos: torch.Tensor
    sin: torch.Tensor
    layout: RopeLayout

    def slice_tokens(self, start: int, stop: int) -> RopeTables:
        """The tables of tokens ``[start, stop)`` (token axis is 2 of ``(B, H, T, D/2)`` for split, 1 of
        ``(B, T, H·D)`` for interleaved)."""
        if self.layout is RopeLayout.SPLIT:
            return RopeTables(self.cos[:, :, start:stop], self.sin[:, :, start:stop], self.layout)
        return RopeTables(self.cos[:, start:stop], self.sin[:, start:stop], self.layout)


@functools.lru_cache(maxsize=16)
def frequency_grid(theta: float, n_axes: int, dim: int, double_precision: bool) -> torch.Tensor:
    """Float32 angular frequencies ``θ^linspace(0, 1, K)·π/2``, shape ``(K,)`` with ``K = dim // (2·n_axes)``.

    Mirrors ``ltx_core.model.transformer.rope.generate_freq_grid_np`` (``double_precision``) and
    ``generate_freq_grid_pytorch``.
    """
    count = dim // (2 * n_axes)
    if double_precision:
        grid = np.power(theta, np.linspace(0.0, 1.0, count, dtype=np.float64))
        return torch.tensor(grid * math.pi / 2, dtype=torch.float32)
    exps = torch.linspace(math.log(1, theta), math.log(theta, theta), count, dtype=torch.float32)
    return (theta**exps).to(torch.float32) * math.pi / 2


def rope_tables(
    positions: torch.Tensor,
    *,
    dim: int,
    heads: int,
    max_pos: tuple[int, ...],
    theta: float = 10000.0,
    layout: RopeLayout = RopeLayout.SPLIT,
    double_precision: bool = True,
    dtype: torch.dtype = torch.float32,
) -> RopeTables:
    """Build cos/sin tables for ``positions``; see :class:`RopeTables` for their shapes.

    Mirrors ``ltx_core.model.transformer.rope.precompute_freqs_cis``.

    Args:
        positions: ``(B, n_axes, T, 2)`` bounds (or ``(B, n_axes, T)`` points), in the units of ``max_pos`` (video:
            seconds, pixels, pixels; audio: seconds; connectors: token index).
        dim: total rotated width ``H·D`` of the attention.
        heads: number of heads ``H`` (split layout reshapes per head).
        max_pos: per-axis normaliser (e.g. ``(20, 2048, 2048)`` for video, ``(20,)`` for audio).

    Raises:
        InputError: ``positions`` has a different number of axes than ``max_pos``.
    """
    n_axes = positions.shape[1]
    if n_axes != len(max_pos):
        raise InputError(f"RoPE positions have {n_axes} axes (shape {tuple(positions.shape)}) but max_pos has "
                         f"{len(max_pos)} entries; video positions are (B, 3, T, 2), audio ones (B, 1, T, 2).")
    grid = frequency_grid(float(theta), n_axes, dim, double_precision).to(positions.device)
    points = (positions[..., 0] + positions[..., 1]) / 2.0 if positions.ndim == 4 else positions
    fractions = torch.stack([points[:, i] / max_pos[i] for i in range(n_axes)], dim=-1)  # (B, T, n_axes)
    freqs = (grid * (fractions.unsqueeze(-1) * 2 - 1)).transpose(-1, -2).flatten(2)  # (B, T, K·n_axes)
    batch, tokens = freqs.shape[:2]
    if layout is RopeLayout.SPLIT:
        pad = dim // 2 - freqs.shape[-1]
        cos, sin = _pad_front(freqs.cos(), freqs.sin(), pad)
        cos = cos.reshape(batch, tokens, heads, -1).transpose(1, 2)
        sin = sin.reshape(batch, tokens, heads, -1).transpose(1, 2)
    else:
        cos, sin = freqs.cos().repeat_interleave(2, dim=-1), freqs.sin().repeat_interleave(2, dim=-1)
        cos, sin = _pad_front(cos, sin, dim % (2 * n_axes))
    return RopeTables(cos.to(dtype), sin.to(dtype), layout)


def _pad_front(cos: torch.Tensor, sin: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    if pad == 0:
        return cos, sin
    shape = (*cos.shape[:-1], pad)
    return (torch.cat([cos.new_ones(shape), cos], dim=-1), torch.cat([sin.new_zeros(shape), sin], dim=-1))


def apply_rope_split(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``(B, H, T, D)`` by split-layout tables ``(B, H, T, D/2)``; returns a contiguous tensor.

    Mirrors ``ltx_core.model.transformer.rope.apply_split_rotary_emb``.
    """
    half = x.shape[-1] // 2
    pairs = x.unflatten(-1, (2, half))
    out = pairs * cos.unsqueeze(-2)
    out[..., 0, :].addcmul_(sin, pairs[..., 1, :], value=-1.0)
    out[..., 1, :].addcmul_(sin, pairs[..., 0, :])
    return out.flatten(-2)


def apply_rope_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``(B, T, H·D)`` by interleaved tables ``(B, T, H·D)`` (pairs are adjacent channels).

    Mirrors ``ltx_core.model.transformer.rope.apply_interleaved_rotary_emb``.
    """
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return x * cos + rotated * sin
