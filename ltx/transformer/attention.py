"""Multi-head attention of LTX-2: q/k RMSNorm over the full width, RoPE, optional per-head gate (LTX-2.3).

Checkpoint keys: ``to_q``, ``to_k``, ``to_v``, ``q_norm``, ``k_norm``, ``to_out.0``, and ``to_gate_logits`` when
gated. The attention kernel itself comes from :mod:`rs_ltxv.ops` by backend name.
"""

from __future__ import annotations

import enum

import torch
from torch import nn

from ...ops import attention as attention_kernel
from ..config import RopeLayout
from .rope import RopeTables, apply_rope_interleaved, apply_rope_split


class AttentionKind(str, enum.Enum):
    """Which attention of a block a kernel is running, so a kernel override (e.g. the sequence-parallel kernels of
    :mod:`rs_ltxv.distributed`) is chosen by the call site, never guessed from tensor shapes.

    The sub-layers of ``ltx_core.model.transformer.transformer.BasicAVTransformerBlock``: ``attn1``, ``attn2``,
    ``audio_attn1``, ``audio_attn2``, ``audio_to_video_attn``, ``video_to_audio_attn``.
    """

    VIDEO_SELF = "video_self"  # attn1: video tokens attend to video tokens
    VIDEO_TEXT = "video_text"  # attn2: video tokens attend to the text context
    AUDIO_SELF = "audio_self"  # audio_attn1
    AUDIO_TEXT = "audio_text"  # audio_attn2
    AUDIO_TO_VIDEO = "audio_to_video"  # audio_to_video_attn: Q video, K/V audio
    VIDEO_TO_AUDIO = "video_to_audio"  # video_to_audio_attn: Q audio, K/V video


class Attention(nn.Module):
    """Self- or cross-attention from ``query_dim`` tokens onto ``context_dim`` tokens with ``heads × head_dim``.

    Mirrors ``ltx_core.model.transformer.attention.Attention`` (diffusers:
    ``diffusers.models.transformers.transformer_ltx2.LTX2Attention`` with ``LTX2AudioVideoAttnProcessor`` /
    ``LTX2PerturbedAttnProcessor``).
    """

    def __init__(
        self,
        query_dim: int,
        heads: int,
        head_dim: int,
        context_dim: int | None = None,
        norm_eps: float = 1e-6,
        gated: bool = False,
    ) -> None:
        super().__init__()
        inner = heads * head_dim
        context_dim = query_dim if context_dim is None else context_dim
        self.heads = heads
        self.head_dim = head_dim
        self.q_norm = nn.RMSNorm(inner, eps=norm_eps)
        self.k_norm = nn.RMSNorm(inner, eps=norm_eps)
        self.to_q = nn.Linear(query_dim, inner)
        self.to_k = nn.Linear(context_dim, inner)
        self.to_v = nn.Linear(context_dim, inner)
        self.to_gate_logits = nn.Linear(query_dim, heads) if gated else None
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Identity())

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, H·D)`` → ``(B, H, T, D)`` view."""
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    def _project_rotated(self, proj: nn.Linear, norm: nn.RMSNorm, x: torch.Tensor, pe: RopeTables | None):
        y = norm(proj(x))
        if pe is None:
            return self._heads(y)
        if pe.layout is RopeLayout.SPLIT:
            return apply_rope_split(self._heads(y), pe.cos, pe.sin)
        return self._heads(apply_rope_interleaved(y, pe.cos, pe.sin))

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        pe: RopeTables | None = None,
        k_pe: RopeTables | None = None,
        skip: bool = False,
        keep: torch.Tensor | None = None,
        backend: str = "sdpa",
    ) -> torch.Tensor:
        """Attend ``x`` ``(B, T, query_dim)`` to ``context`` ``(B, S, context_dim)`` (``x`` itself when None).

        Args:
            mask: additive bias broadcastable to ``(B, H, T, S)``.
            pe / k_pe: RoPE tables for queries / keys (``k_pe`` defaults to ``pe``).
            skip: STG perturbation for the whole batch — the output is the value projection (self-attention only).
            keep: ``(B, 1, 1)`` per-sample 1 = attend, 0 = value projection (mixed perturbation batches).
            backend: attention backend name resolved by :func:`rs_ltxv.ops.resolve_backend`, or a callable
                ``(q, k, v, mask) -> out`` over ``(B, H, T, D)`` tensors.

        Returns:
            ``(B, T, query_dim)``.
        """
        context = x if context is None else context
        v = self.to_v(context)
        if skip:
            out = v
        else:
            q = self._project_rotated(self.to_q, self.q_norm, x, pe)
            k = self._project_rotated(self.to_k, self.k_norm, context, pe if k_pe is None else k_pe)
            out = attention_kernel(q, k, self._heads(v), mask, backend)
            out = out.transpose(1, 2).flatten(2)
            if keep is not None:
                out = out * keep + v * (1 - keep)
        if self.to_gate_logits is not None:
            gates = 2.0 * torch.sigmoid(self.to_gate_logits(x))  # (B, T, H)
            out = (out.unflatten(-1, (self.heads, self.head_dim)) * gates.unsqueeze(-1)).flatten(2)
        return self.to_out(out)
