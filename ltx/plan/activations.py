"""Peak bytes the transformer forward creates at a token count: a count of what is alive at each phase.

What is alive was read from :mod:`rs_ltxv.ltx.transformer` (``model.py``, ``block.py``, ``attention.py``,
``feed_forward.py``, ``rope.py``, ``modulation.py``); units below are ``T·D·e`` (tokens × stream width × element
bytes) of the stream being updated, ``Dx`` the audio-video cross-attention width (audio heads × audio head dim):

* state: the block's input ``x`` (held by its :class:`~..transformer.stream.StreamState`) and, after the first
  sub-layer, the updated ``x`` (1 + 1); RoPE tables: cos + sin = ``T·D`` (split layout; 2× interleaved) and the
  temporal-only cross-attention tables ``T·Dx``; with more than one distinct timestep (conditioning), the
  per-token AdaLN values of a sub-layer, 3 rows of ``T·D`` (:meth:`~..transformer.modulation.Modulation.values`).
* self-attention (gated, LTX-2.3): normed input, v, q, k, the flattened kernel output and the gated output: 6.
  The kernel is assumed memory-efficient (flash / efficient SDPA, CPU SDPA): no ``T×T`` scores.
* text cross-attention: query, q, flattened output, gated output: 4 (k, v are text-sized).
* audio↔video cross-attention: normed video, modulated query, to_out ``D`` each (3) + q, output, gate ``Dx`` each.
* feed-forward: normed input (1) + the 4× hidden activation and its GELU (8), or with ``c`` chunks of ``k =
  ⌈T/c⌉`` tokens the finished pieces + one chunk's 8 (``(T − k + 8k)/T``), and the final concatenation (2).
* RoPE build (``rope_tables``): float32 frequencies, cos, sin and their front-padded copies, ``5 × T·D/2 × 4``
  bytes (3 × when no padding is needed), with ``x`` alive.

No ltx-core counterpart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import RopeLayout, TransformerConfig

FF_MULT = 4  # FeedForward(dim, mult=4)
FP32 = 4


@dataclass(frozen=True)
class StageTokens:
    """Token counts of one transformer forward.

    Attributes:
        video: video tokens (generated + guide tokens); audio: audio latent frames; text: context tokens per
            stream; per_token_timesteps: more than one distinct timestep in a stream (conditioned frames), so the
            AdaLN values are materialised per token; attention_mask: a ``(T, T)`` self-attention bias (keyframe
            guides with a strength below 1).
    """

    video: int
    audio: int = 0
    text: int = 1024
    per_token_timesteps: bool = False
    attention_mask: bool = False


def rope_build_bytes(tokens: int, dim: int, n_axes: int, layout: RopeLayout, element_size: int) -> int:
    """Transient peak of :func:`~..transformer.rope.rope_tables` for ``tokens`` tokens of width ``dim`` (bytes),
    its result included."""
    half = tokens * (dim // 2) * FP32
    pad = dim // 2 - (dim // (2 * n_axes)) * n_axes
    if layout is RopeLayout.INTERLEAVED:
        return (9 if pad else 5) * half
    cast = 0 if element_size == FP32 else tokens * dim * element_size
    return max((5 if pad else 3) * half, 3 * half + cast)


def rope_table_bytes(tokens: int, dim: int, layout: RopeLayout, element_size: int) -> int:
    """Bytes of one cos + sin pair for ``tokens`` tokens of width ``dim``: ``T·dim·e`` (split) or twice that."""
    return tokens * dim * element_size * (2 if layout is RopeLayout.INTERLEAVED else 1)


def _ff_units(tokens: int, chunks: int) -> float:
    """Feed-forward working set above its normed input, in ``T·D`` units."""
    if chunks <= 1 or tokens < 2:
        return 2.0 * FF_MULT
    k = math.ceil(tokens / chunks)
    return max((tokens - k + 2 * FF_MULT * k) / tokens, 2.0)


def _stream_phases(t: int, d: int, dx: int, other_t: int, n_axes: int, cfg: TransformerConfig, e: int,
                   chunks: int, tokens: StageTokens) -> dict[str, int]:
    unit = t * d * e
    ropes = rope_table_bytes(t, d, cfg.rope_layout, e) + rope_table_bytes(t, dx, cfg.rope_layout, e)
    mods = 3 * unit if tokens.per_token_timesteps else 0
    index = 8 * t if tokens.per_token_timesteps else 0
    base = ropes + index
    phases = {
        "rope build": unit + rope_build_bytes(t, d, n_axes, cfg.rope_layout, e),
        "self-attention": base + mods + 7 * unit,
        "text attention": base + (mods if cfg.cross_attention_adaln else 0) + 6 * unit,
        "feed-forward": base + mods + int((3 + _ff_units(t, chunks)) * unit),
    }
    if other_t:
        phases["audio-video attention"] = base + 5 * unit + 3 * t * dx * e
        phases["rope build"] = max(phases["rope build"],
                                   unit + ropes - rope_table_bytes(t, dx, cfg.rope_layout, e)
                                   + rope_build_bytes(t, dx, 1, cfg.rope_layout, e))
    return phases


def _state_bytes(t: int, d: int, dx: int, cfg: TransformerConfig, e: int) -> int:
    """A stream's state while the other stream is updated: two ``x`` and its RoPE tables."""
    return 2 * t * d * e + rope_table_bytes(t, d, cfg.rope_layout, e) + rope_table_bytes(t, dx, cfg.rope_layout, e)


def forward_phases(cfg: TransformerConfig, tokens: StageTokens, element_size: int, ffn_chunks: int = 1
                   ) -> dict[str, int]:
    """Bytes the forward has created at each phase's peak (inputs and weights not included), keyed "video
    self-attention", "audio feed-forward", …; the largest value is the forward's activation peak.

    Args:
        cfg: the transformer's geometry (widths, heads, RoPE layout, LTX-2 / 2.3).
        tokens: the forward's token counts; element_size: bytes per activation element (2 for bf16);
            ffn_chunks: :attr:`~..transformer.block.RunOptions.ffn_chunks`.
    """
    e, dx = element_size, cfg.audio_num_attention_heads * cfg.audio_attention_head_dim
    tv, ta = tokens.video, tokens.audio
    dv, da = cfg.inner_dim, cfg.audio_inner_dim
    bias = tv * tv * e if tokens.attention_mask else 0
    video = _stream_phases(tv, dv, dx, ta, len(cfg.positional_embedding_max_pos), cfg, e, ffn_chunks, tokens)
    audio = _stream_phases(ta, da, dx, tv, 1, cfg, e, ffn_chunks, tokens) if ta else {}
    v_state, a_state = _state_bytes(tv, dv, dx, cfg, e), _state_bytes(ta, da, dx, cfg, e)
    out = {f"video {k}": v + a_state + bias for k, v in video.items()}
    out["video rope build"] -= a_state  # the audio stream is prepared after the video one
    out |= {f"audio {k}": v + v_state + bias for k, v in audio.items()}
    return out


def input_bytes(cfg: TransformerConfig, tokens: StageTokens, element_size: int) -> int:
    """Bytes of what a stage holds for its forwards: latents, noise, denoised estimate and velocity (4 × ``T·C``),
    positions, per-token timesteps and masks, and the positive + negative text contexts of both streams."""
    e = element_size
    tv, ta, s = tokens.video, tokens.audio, tokens.text
    latents = 4 * e * (tv * cfg.in_channels + ta * cfg.audio_in_channels)
    positions = e * tv * 3 * 2 + FP32 * ta * 2
    per_token = FP32 * 3 * (tv + ta)
    contexts = 2 * s * (cfg.inner_dim + cfg.audio_inner_dim) * e
    weights = FP32 * tv * tv if tokens.attention_mask else 0
    return latents + positions + per_token + contexts + weights
