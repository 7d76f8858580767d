"""Collectives of Ulysses sequence parallelism over a torch.distributed group, with uneven splits.

Layouts: attention tensors are ``(B, H, T, D)`` (batch, heads, tokens, head dim). A rank holds either a token range
of all heads (``(B, H, t_r, D)``, sequence-sharded) or all tokens of a head group (``(B, h_r, T, D)``,
head-sharded). :func:`seq_to_head` / :func:`head_to_seq` switch between them with one ``all_to_all_single`` whose
split sizes may differ per rank. Mirrors ``yunchang.comm.all_to_all.all_to_all_4D`` (scatter heads / gather
sequence and back), without its even-split requirement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.distributed as dist


class TrafficMeter:
    """Counts the bytes this process sends through the collectives of this module while it is active (``with
    TrafficMeter() as meter:``): ``all_to_all`` (excluding the piece a rank keeps) and ``all_gather`` (its own
    padded piece, sent to every other rank)."""

    active: ClassVar[list[TrafficMeter]] = []

    def __init__(self) -> None:
        self.sent: dict[str, int] = {"all_to_all": 0, "all_gather": 0}
        self.calls: dict[str, int] = {"all_to_all": 0, "all_gather": 0}

    def add(self, kind: str, nbytes: int) -> None:
        """Record one collective of ``kind`` sending ``nbytes``."""
        self.sent[kind] += nbytes
        self.calls[kind] += 1

    def __enter__(self) -> TrafficMeter:
        TrafficMeter.active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        TrafficMeter.active.remove(self)


def _count(kind: str, nbytes: int) -> None:
    for meter in TrafficMeter.active:
        meter.add(kind, nbytes)


@dataclass(frozen=True)
class Group:
    """A process group as the collectives need it: ``pg`` (None = the default group), this process's ``rank``
    inside it, its ``world`` size and the global rank of its first member (``src``, for broadcasts)."""

    pg: Any
    rank: int
    world: int
    src: int = 0

    @staticmethod
    def current(pg: Any = None) -> Group:
        """The group ``pg`` (default: the initialised default group) seen from this process."""
        src = 0 if pg is None else dist.get_global_rank(pg, 0)
        return Group(pg, dist.get_rank(pg), dist.get_world_size(pg), src)


def _exchange(flat: torch.Tensor, send_numels: Sequence[int], recv_numels: Sequence[int], group: Group
              ) -> torch.Tensor:
    """One ``all_to_all_single``: ``flat`` holds the piece for rank ``j`` at its ``send_numels[j]`` offset; returns
    the concatenation of what every rank sent here (``recv_numels[i]`` elements from rank ``i``)."""
    out = torch.empty(sum(recv_numels), dtype=flat.dtype, device=flat.device)
    dist.all_to_all_single(out, flat, output_split_sizes=list(recv_numels), input_split_sizes=list(send_numels),
                           group=group.pg)
    _count("all_to_all", (flat.numel() - send_numels[group.rank]) * flat.element_size())
    return out


def seq_to_head(xs: Sequence[torch.Tensor], tokens: Sequence[int], heads: Sequence[int], group: Group
                ) -> list[torch.Tensor]:
    """Sequence-sharded ``(B, H, t_r, D)`` tensors (e.g. q, k, v) → head-sharded ``(B, h_r, T, D)``, all in one
    all-to-all; ``tokens`` / ``heads`` are every rank's share (``T = sum(tokens)``, ``H = sum(heads)``).

    Pieces travel token-major (``(t, n, B, h, D)``), so what arrives is one ``(T, n, B, h_r, D)`` buffer and the
    results are views of it (last dimension contiguous, as every attention kernel needs): no gather copy.
    """
    n = len(xs)
    b, _, t_r, d = xs[0].shape
    h_r = heads[group.rank]
    send = [t_r * n * b * h * d for h in heads]
    flat = torch.empty(sum(send), dtype=xs[0].dtype, device=xs[0].device)
    offset = head = 0
    for h, size in zip(heads, send, strict=True):
        view = flat[offset:offset + size].view(t_r, n, b, h, d)
        for i, x in enumerate(xs):
            view[:, i].copy_(x[:, head:head + h].permute(2, 0, 1, 3))
        offset, head = offset + size, head + h
    full = _exchange(flat, send, [t * n * b * h_r * d for t in tokens], group).view(sum(tokens), n, b, h_r, d)
    return [full[:, i].permute(1, 2, 0, 3) for i in range(n)]


def head_to_seq(y: torch.Tensor, tokens: Sequence[int], heads: Sequence[int], group: Group) -> torch.Tensor:
    """Head-sharded ``(B, h_r, T, D)`` → sequence-sharded ``(B, H, t_r, D)`` (the inverse of :func:`seq_to_head`),
    a view of the received ``(H, B, t_r, D)`` buffer."""
    b, h_r, _, d = y.shape
    t_r = tokens[group.rank]
    send = [h_r * b * t * d for t in tokens]
    flat = torch.empty(sum(send), dtype=y.dtype, device=y.device)
    offset = token = 0
    for t, size in zip(tokens, send, strict=True):
        flat[offset:offset + size].view(h_r, b, t, d).copy_(y[:, :, token:token + t].transpose(0, 1))
        offset, token = offset + size, token + t
    full = _exchange(flat, send, [h * b * t_r * d for h in heads], group).view(sum(heads), b, t_r, d)
    return full.transpose(0, 1)


def _gather(x: torch.Tensor, sizes: Sequence[int], dim: int, group: Group) -> torch.Tensor:
    """Concatenate every rank's ``x`` along ``dim`` (rank ``i`` holds ``sizes[i]`` there): padded all_gather, trim."""
    longest = max(sizes)
    pad = list(x.shape)
    pad[dim] = longest - x.shape[dim]
    padded = torch.cat([x, x.new_zeros(pad)], dim=dim) if pad[dim] else x.contiguous()
    out = [torch.empty_like(padded) for _ in range(group.world)]
    dist.all_gather(out, padded, group=group.pg)
    _count("all_gather", padded.numel() * padded.element_size() * (group.world - 1))
    return torch.cat([o.narrow(dim, 0, n) for o, n in zip(out, sizes, strict=True)], dim=dim)


def gather_tokens(x: torch.Tensor, tokens: Sequence[int], group: Group) -> torch.Tensor:
    """Every rank's token range ``(B, t_r, C)`` → the whole sequence ``(B, T, C)`` on every rank."""
    return _gather(x, tokens, 1, group)


def gather_heads(y: torch.Tensor, heads: Sequence[int], group: Group) -> torch.Tensor:
    """Every rank's head group ``(B, h_r, S, D)`` → all heads ``(B, H, S, D)`` on every rank."""
    return _gather(y, heads, 1, group)


def broadcast_(x: torch.Tensor, group: Group) -> torch.Tensor:
    """Overwrite ``x`` (any shape) with the group's first rank's values, in place; returns ``x``."""
    dist.broadcast(x, src=group.src, group=group.pg)
    return x


def broadcast_flag(flag: bool, group: Group) -> bool:
    """The first rank's ``flag`` on every rank (e.g. a cancel request seen only by rank 0). A collective: every rank
    must call it at the same point of the run."""
    t = torch.tensor([1 if flag else 0], dtype=torch.int32)
    if dist.get_backend(group.pg) == "nccl":
        t = t.cuda()
    return bool(broadcast_(t, group).item())
