"""Peak live-tensor memory of a call, shared by the benchmarks (CPU, from torch's memory timeline)."""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch


def peak_bytes(fn: Callable[[], object]) -> int:
    """High-water mark of live CPU tensor bytes while ``fn`` runs, minus what was live when it started."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True,
                                record_shapes=True, with_stack=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        out = Path(tmp) / "timeline.raw.json"
        prof.export_memory_timeline(str(out), device="cpu")
        _times, sizes = json.loads(out.read_text())
    totals = [sum(s) for s in sizes]
    return max(totals) - totals[0]
