"""Run parser-fuzz cases in forked children and measure each one (Linux).

Each case runs in a child forked after the heavy imports (torch, the loaders), so a case that hangs or allocates
gigabytes cannot take the parent with it: the parent kills a child after ``deadline_s`` and reads its peak
resident set and CPU time from ``os.wait4``'s rusage. The growth is ``ru_maxrss`` minus the resident set the child
reported right after the fork (a child starts with the parent's anonymous pages only; the shared-library pages it
maps again count as growth, so this is an upper bound; a killed child is measured against the parent's resident set
instead). The child caps its address space at its size at the fork plus ``cap_mb`` (an
allocation beyond fails with ``MemoryError``, reported as ``memory``). Outcomes: ``ok``, the class name of a project
error (``CheckpointError``, ``ConfigError``, ``GGUFError`` …), ``raw:<Type>`` for any other exception, ``timeout``,
``memory``, ``crash:<signal>``.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rs_ltxv.gguf_loader.errors import GGUFError
from rs_ltxv.ltx.errors import RSLTXVError

from .fuzz_files import KINDS, Kind
from .fuzz_mutate import mutate

PROJECT_ERRORS = (RSLTXVError, GGUFError)
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True)
class Result:
    """One case: ``kind``, ``index``, mutation ``label``, ``outcome`` (see the module docstring), the first raw or
    project error ``message`` (shortened), wall and CPU ``seconds``, resident-set growth ``rss_mb``."""

    kind: str
    index: int
    label: str
    outcome: str
    message: str
    wall_s: float
    cpu_s: float
    rss_mb: float


def _statm() -> tuple[int, int]:
    """(virtual size, resident set) of this process in KiB."""
    size, resident = open("/proc/self/statm").read().split()[:2]
    return int(size) * _PAGE_KB, int(resident) * _PAGE_KB


def classify(exc: BaseException) -> str:
    """The outcome name of an exception a case raised."""
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, PROJECT_ERRORS):
        return type(exc).__name__
    return f"raw:{type(exc).__name__}"


def run_steps(kind: Kind, path: Path) -> tuple[str, str]:
    """Every step of ``kind`` on ``path``; the outcome is the first raw exception's, else the first project
    error's, else ``ok``."""
    found: list[tuple[str, str]] = []
    for step, fn in kind.steps:
        try:
            fn(path)
        except BaseException as exc:  # noqa: BLE001 - the point is to see every kind of exception
            found.append((classify(exc), f"{step}: {type(exc).__name__}: {str(exc)[:300]}"))
    raw = [f for f in found if f[0].startswith("raw:") or f[0] == "memory"]
    return (raw or found or [("ok", "")])[0]


def _child(kind: Kind, path: Path, write_fd: int, cap_mb: int) -> None:
    start_kb = _statm()[1]
    try:
        import torch

        torch.set_num_threads(1)  # the parent's OpenMP pool does not survive the fork
        size_kb, _ = _statm()
        limit = (size_kb + cap_mb * 1024) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        outcome, message = run_steps(kind, path)
    except BaseException as exc:  # noqa: BLE001
        outcome, message = classify(exc), str(exc)[:300]
    os.write(write_fd, json.dumps([outcome, message[:2000], start_kb]).encode())
    os._exit(0)


@dataclass
class _Running:
    pid: int
    read_fd: int
    start: float
    base_kb: int
    kind: str
    index: int
    label: str


def _finish(job: _Running, status: int, usage: resource.struct_rusage, timed_out: bool) -> Result:
    raw = b""
    while chunk := os.read(job.read_fd, 65536):
        raw += chunk
    os.close(job.read_fd)
    base_kb = job.base_kb
    if timed_out:
        outcome, message = "timeout", ""
    elif raw:
        outcome, message, base_kb = json.loads(raw)
    elif os.WIFSIGNALED(status):
        outcome, message = f"crash:{signal.Signals(os.WTERMSIG(status)).name}", ""
    else:
        outcome, message = "crash:no-result", ""
    return Result(job.kind, job.index, job.label, outcome, message, time.monotonic() - job.start,
                  usage.ru_utime + usage.ru_stime, max(0.0, (usage.ru_maxrss - base_kb) / 1024))


def run_cases(cases: Iterator[tuple[Kind, int, str, Path]], *, jobs: int = 2, deadline_s: float = 10.0,
              cap_mb: int = 2048) -> Iterator[Result]:
    """Run ``(kind, index, label, path)`` cases, ``jobs`` children at a time; yields each :class:`Result` as its
    child ends (the case file is deleted then)."""
    running: list[tuple[_Running, Path]] = []
    pending = iter(cases)
    exhausted = False
    while running or not exhausted:
        while not exhausted and len(running) < jobs:
            item = next(pending, None)
            if item is None:
                exhausted = True
                break
            kind, index, label, path = item
            read_fd, write_fd = os.pipe()
            base_kb = _statm()[1]
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _child(kind, path, write_fd, cap_mb)
            os.close(write_fd)
            running.append((_Running(pid, read_fd, time.monotonic(), base_kb, kind.name, index, label), path))
        time.sleep(0.002)
        for entry in list(running):
            job, path = entry
            pid, status, usage = os.wait4(job.pid, os.WNOHANG)
            timed_out = pid == 0 and time.monotonic() - job.start > deadline_s
            if timed_out:
                os.kill(job.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(job.pid, 0)
            if pid:
                running.remove(entry)
                path.unlink(missing_ok=True)
                yield _finish(job, status, usage, timed_out)


def fuzz_cases(kinds: list[str], per_kind: int, seed: int, folder: Path) -> Iterator[tuple[Kind, int, str, Path]]:
    """``per_kind`` seeded mutations of each kind's seed file, written into ``folder`` one at a time (kinds
    interleaved, so a partial run covers all of them)."""
    seeds: dict[str, tuple[bytes, dict | None]] = {}
    for name in kinds:
        kind = KINDS[name]
        path = folder / f"seed-{name}{kind.suffix}"
        config = kind.build(path)
        seeds[name] = (path.read_bytes(), config)
    for index in range(per_kind):
        for name in kinds:
            kind = KINDS[name]
            data, config = seeds[name]
            rng = random.Random(f"{seed}/{name}/{index}")
            label, mutated = mutate(rng, data, kind.fmt, config)
            path = folder / f"case-{name}-{index}{kind.suffix}"
            path.write_bytes(mutated)
            yield kind, index, label, path


def fuzz(kinds: list[str], per_kind: int, seed: int, *, jobs: int = 2, deadline_s: float = 10.0,
         on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Build the seed files, run ``per_kind`` mutations of each kind and return every :class:`Result`."""
    results = []
    with tempfile.TemporaryDirectory(prefix="rs-ltxv-fuzz-") as tmp:
        for result in run_cases(fuzz_cases(kinds, per_kind, seed, Path(tmp)), jobs=jobs, deadline_s=deadline_s):
            results.append(result)
            if on_result:
                on_result(result)
    return results


def summary(results: list[Result], *, slowest: int = 5) -> str:
    """Outcome counts per kind, the slowest cases and the largest resident-set growths, as text."""
    lines = []
    for kind in sorted({r.kind for r in results}):
        counts = Counter(r.outcome for r in results if r.kind == kind)
        lines.append(f"{kind:<12} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    total = Counter(r.outcome for r in results)
    lines.append(f"{'all':<12} " + ", ".join(f"{k} {v}" for k, v in sorted(total.items())))
    for title, key in (("slowest (CPU s)", lambda r: r.cpu_s), ("largest RSS growth (MB)", lambda r: r.rss_mb)):
        lines.append(title + ":")
        for r in sorted(results, key=key, reverse=True)[:slowest]:
            lines.append(f"  {r.kind}#{r.index} {r.label[:60]!r}: {r.outcome} wall {r.wall_s:.2f} s, cpu "
                         f"{r.cpu_s:.2f} s, rss +{r.rss_mb:.0f} MB")
    return "\n".join(lines)
