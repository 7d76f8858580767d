"""Measure the peak of live tensor bytes of a call, on any device, at the allocation level.

How: a :class:`~torch.utils._python_dispatch.TorchDispatchMode` sees every aten op the call runs (below autograd,
composite ops already split into their parts). After each op it records the storages of the op's outputs that are
new (not a storage of one of its inputs: views and in-place ops add nothing) with their size, and keeps a weak
reference to each (``StorageWeakRef``: it does not keep the storage alive). Before each op it drops the storages
whose weak reference has expired. The running sum after each op is the live working set; its maximum is the peak.

This is what ``torch.cuda.max_memory_allocated`` counts on a GPU, minus two things no tensor shows: kernel-internal
scratch (cuBLAS / attention workspaces, CPU SDPA's per-thread blocks) and allocator rounding / fragmentation.
Storages that existed before the call (weights, inputs) are not counted. Unlike RSS deltas it is deterministic and
free of the C allocator's caching; unlike the profiler's memory timeline it costs only a dict update per op.
No ltx-core counterpart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveTensorPeak(TorchDispatchMode):
    """Dispatch mode tracking live bytes of the storages created inside it.

    Attributes:
        current: bytes of storages created inside the mode and still alive (after the last op).
        peak: the largest ``current`` seen right after an op.
    """

    def __init__(self) -> None:
        super().__init__()
        self._live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = 0
        self.peak = 0

    def _sweep(self) -> None:
        dead = [key for key, (ref, _n) in self._live.items() if ref.expired()]
        for key in dead:
            self.current -= self._live.pop(key)[1]

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        self._sweep()
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = {StorageWeakRef(t.untyped_storage()).cdata
                  for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            ref = StorageWeakRef(storage)
            if ref.cdata in inputs or ref.cdata in self._live:
                continue
            self._live[ref.cdata] = (ref, storage.nbytes())
            self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        return out


def peak_live_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes of tensors alive at once while ``fn()`` runs, counting only tensors it creates (its result
    included while it is being built). See the module docstring for what is and is not counted."""
    with LiveTensorPeak() as mode:
        fn()
    return mode.peak
