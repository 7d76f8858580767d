"""Guidance perturbations: skip video/audio self-attention (STG) or audio↔video cross-attention in chosen blocks.

A :class:`Perturbations` holds one set of :class:`Skip` rules per batch item, so a batched forward can mix a
conditional pass and perturbed passes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch


class SkipKind(str, enum.Enum):
    VIDEO_SELF_ATTN = "skip_video_self_attn"
    AUDIO_SELF_ATTN = "skip_audio_self_attn"
    A2V_CROSS_ATTN = "skip_a2v_cross_attn"
    V2A_CROSS_ATTN = "skip_v2a_cross_attn"


@dataclass(frozen=True)
class Skip:
    """Skip one kind of attention in ``blocks`` (None = every block)."""

    kind: SkipKind
    blocks: frozenset[int] | None = None

    def applies(self, kind: SkipKind, block: int) -> bool:
        return self.kind is kind and (self.blocks is None or block in self.blocks)


def skip(kind: SkipKind | str, blocks: Iterable[int] | None = None) -> Skip:
    """Convenience constructor: ``skip("skip_video_self_attn", [28])``."""
    return Skip(SkipKind(kind), None if blocks is None else frozenset(int(b) for b in blocks))


@dataclass(frozen=True)
class Perturbations:
    """Per-batch-item skip rules: ``per_item[b]`` applies to batch item ``b``."""

    per_item: tuple[tuple[Skip, ...], ...]

    @staticmethod
    def same_for_batch(batch: int, rules: Sequence[Skip]) -> Perturbations:
        return Perturbations(tuple(tuple(rules) for _ in range(batch)))

    def _flags(self, kind: SkipKind, block: int) -> list[bool]:
        return [any(r.applies(kind, block) for r in rules) for rules in self.per_item]

    def all(self, kind: SkipKind, block: int) -> bool:
        return all(self._flags(kind, block))

    def keep_mask(self, kind: SkipKind, block: int, like: torch.Tensor) -> torch.Tensor | None:
        """``(B, 1, 1)`` with 0 where the item skips, 1 elsewhere; None when no item skips."""
        flags = self._flags(kind, block)
        if not any(flags):
            return None
        keep = torch.tensor([0.0 if f else 1.0 for f in flags], device=like.device, dtype=like.dtype)
        return keep.view(-1, *([1] * (like.ndim - 1)))
