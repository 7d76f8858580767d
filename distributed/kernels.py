"""Sequence-parallel attention kernels: ``(q, k, v, mask) -> out`` callables over ``(B, H, T, D)`` tensors that
wrap any local backend (sdpa, sage, flash), chosen per :class:`~rs_ltxv.ltx.transformer.AttentionKind` through
``RunOptions.kernels``.

* :class:`UlyssesSelf` — video self-attention: q, k, v hold this rank's tokens; one all-to-all gives every rank all
  tokens of its head group, the local kernel runs with the full ``(B, 1, T, T)`` bias, one all-to-all returns.
  Mirrors ``yunchang.ulysses.attn_layer.UlyssesAttention.forward``.
* :class:`UlyssesKV` — video→audio attention: queries are the (replicated) audio tokens, keys and values this rank's
  video tokens; k and v are exchanged, the queries sliced to the rank's heads, and the head outputs gathered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..ops import attention
from .comm import Group, gather_heads, head_to_seq, seq_to_head
from .splits import head_splits

Kernel = str | Callable


@dataclass(frozen=True)
class UlyssesSelf:
    """Self-attention over a token-sharded sequence; ``tokens`` is every rank's token count, ``base`` the local
    kernel (a backend name already resolved, or a callable)."""

    group: Group
    tokens: tuple[int, ...]
    base: Kernel = "sdpa"

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``q``/``k``/``v`` ``(B, H, t_r, D)`` and ``mask`` None or the full ``(B, 1, T, T)`` additive bias →
        ``(B, H, t_r, D)``.

        Raises:
            InputError: more ranks than heads.
        """
        heads = head_splits(q.shape[1], self.group.world)
        q, k, v = seq_to_head((q, k, v), self.tokens, heads, self.group)  # one exchange for all three
        out = attention(q, k, v, mask, self.base)
        return head_to_seq(out, self.tokens, heads, self.group)


@dataclass(frozen=True)
class UlyssesKV:
    """Attention of replicated queries onto token-sharded keys/values (``tokens``: every rank's key count)."""

    group: Group
    tokens: tuple[int, ...]
    base: Kernel = "sdpa"

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``q`` ``(B, H, S, D)`` (the same on every rank), ``k``/``v`` ``(B, H, t_r, D)``, ``mask`` None or
        broadcastable to ``(B, H, S, T)`` over all keys → ``(B, H, S, D)`` on every rank.

        Raises:
            InputError: more ranks than heads.
        """
        heads = head_splits(q.shape[1], self.group.world)
        start = sum(heads[: self.group.rank])
        mine = slice(start, start + heads[self.group.rank])
        k, v = seq_to_head((k, v), self.tokens, heads, self.group)
        if mask is not None and mask.shape[1] > 1:
            mask = mask[:, mine]
        out = attention(q[:, mine], k, v, mask, self.base)
        return gather_heads(out, heads, self.group)
