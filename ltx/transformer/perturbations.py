"""Guidance perturbations: skip video/audio self-attention (STG) or audio↔video cross-attention in chosen blocks.

A :class:`Perturbations` holds one set of :class:`Skip` rules per batch item, so a batched forward can mix a
conditional pass and perturbed passes. Mirrors ``ltx_core.guidance.perturbations``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ..errors import InputError


class SkipKind(str, enum.Enum):
    """Which attention a :class:`Skip` removes; the values are ``ltx_core.guidance.perturbations.PerturbationType``'s
    (lower case)."""

    VIDEO_SELF_ATTN = "skip_video_self_attn"
    AUDIO_SELF_ATTN = "skip_audio_self_attn"
    A2V_CROSS_ATTN = "skip_a2v_cross_attn"
    V2A_CROSS_ATTN = "skip_v2a_cross_attn"


@dataclass(frozen=True)
class Skip:
    """Skip one kind of attention in ``blocks`` (None = every block).

    Mirrors ``ltx_core.guidance.perturbations.Perturbation``.
    """

    kind: SkipKind
    blocks: frozenset[int] | None = None

    def applies(self, kind: SkipKind, block: int) -> bool:
        """Whether this rule skips ``kind`` in block ``block`` (``Perturbation.is_perturbed``)."""
        return self.kind is kind and (self.blocks is None or block in self.blocks)


def skip(kind: SkipKind | str, blocks: Iterable[int] | None = None) -> Skip:
    """Convenience constructor: ``skip("skip_video_self_attn", [28])``.

    Raises:
        InputError: ``kind`` is not a :class:`SkipKind` value.
    """
    try:
        kind = SkipKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in SkipKind)
        raise InputError(f"Unknown attention skip {kind!r}; choose one of: {choices}.") from None
    return Skip(kind, None if blocks is None else frozenset(int(b) for b in blocks))


@dataclass(frozen=True)
class Perturbations:
    """Per-batch-item skip rules: ``per_item[b]`` applies to batch item ``b``.

    Mirrors ``ltx_core.guidance.perturbations.BatchedPerturbationConfig`` (one ``PerturbationConfig`` per item).
    """

    per_item: tuple[tuple[Skip, ...], ...]

    @staticmethod
    def same_for_batch(batch: int, rules: Sequence[Skip]) -> Perturbations:
        """The same ``rules`` for each of ``batch`` items."""
        return Perturbations(tuple(tuple(rules) for _ in range(batch)))

    def _flags(self, kind: SkipKind, block: int) -> list[bool]:
        return [any(r.applies(kind, block) for r in rules) for rules in self.per_item]

    def all(self, kind: SkipKind, block: int) -> bool:
        """Whether every batch item skips ``kind`` in ``block`` (``BatchedPerturbationConfig.all_in_batch``)."""
        return all(self._flags(kind, block))

    def keep_mask(self, kind: SkipKind, block: int, like: torch.Tensor) -> torch.Tensor | None:
        """``(B, 1, …)`` (``like.ndim`` dims) with 0 where the item skips, 1 elsewhere, in ``like``'s device and
        dtype; None when no item skips. Mirrors ``BatchedPerturbationConfig.mask_like``."""
        flags = self._flags(kind, block)
        if not any(flags):
            return None
        keep = torch.tensor([0.0 if f else 1.0 for f in flags], device=like.device, dtype=like.dtype)
        return keep.view(-1, *([1] * (like.ndim - 1)))
