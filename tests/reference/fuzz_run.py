"""Run parser-fuzz cases in forked worker processes and measure each case (Linux).

The parent builds the seed files, then forks ``jobs`` workers after the heavy imports (torch, the loaders); the
parent hands each worker one case at a time over a pipe. A worker writes the mutated file (:func:`.fuzz_mutate.mutate`,
seeded by ``seed/kind/index``), then measures only the case itself — read → ``info`` → load:

* **memory**: it resets its peak resident set (``/proc/self/clear_refs`` ← 5), runs the case and reports the peak
  (``VmHWM``) minus its resident set just before; where the reset is refused the growth is the peak since the
  worker started minus the resident set before the case (an upper bound);
* **time**: CPU time (``getrusage``, robust on a busy machine) and wall time of the case.

A worker caps its address space at its size at the fork plus ``cap_mb`` (an allocation beyond fails with
``MemoryError``, reported as ``memory``; the worker then exits). The parent kills a worker whose case runs longer
than ``deadline_s`` (``timeout``) and replaces any worker that dies (``crash:<signal>``). Outcomes: ``ok``, the class
name of a project error (``CheckpointError``, ``ConfigError``, ``GGUFError`` …), ``raw:<Type>`` for any other
exception, ``timeout``, ``memory``, ``crash:<signal>``.
"""

from __future__ import annotations

import gc
import json
import os
import random
import resource
import select
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from rs_ltxv.gguf_loader.errors import GGUFError
from rs_ltxv.ltx.errors import RSLTXVError

from .fuzz_files import KINDS, Kind
from .fuzz_mutate import mutate

PROJECT_ERRORS = (RSLTXVError, GGUFError)
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True)
class Result:
    """One case: ``kind``, ``index``, mutation ``label``, ``outcome`` (see the module docstring), the first raw or
    project error ``message`` (shortened), wall and CPU ``seconds`` of the case, resident-set growth ``rss_mb``."""

    kind: str
    index: int
    label: str
    outcome: str
    message: str
    wall_s: float
    cpu_s: float
    rss_mb: float


def _status_kb(field_name: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field_name + ":"))


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
        except BaseException as exc:
            found.append((classify(exc), f"{step}: {type(exc).__name__}: {str(exc)[:300]}"))
    raw = [f for f in found if f[0].startswith("raw:") or f[0] == "memory"]
    return (raw or found or [("ok", "")])[0]


def warm_up(kind: Kind, path: Path) -> None:
    """Run ``kind``'s steps once on a valid file in this process, so the lazy imports of torch and the loaders
    (torch's meta-tensor decompositions alone take ~2 s) happen before the fork, not inside a measured case.

    Raises:
        AssertionError: the valid file does not load.
    """
    outcome, message = run_steps(kind, path)
    assert outcome == "ok", f"the valid {kind.name} file does not load: {message}"
    from rs_ltxv.ltx.upsampler import BlurDownsample

    with torch.device("meta"):
        BlurDownsample(2)  # meta arithmetic: the decompositions are imported on first use


def _measure(case: Callable[[], tuple[str, str]]) -> dict:
    """Run one case (returning its outcome and message) and measure it (module docstring)."""
    gc.collect()
    before = _status_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass  # the peak is then the worker's since it started: an upper bound
    cpu0, wall0 = time.process_time(), time.monotonic()
    outcome, message = case()
    return {"outcome": outcome, "message": message, "wall": time.monotonic() - wall0,
            "cpu": time.process_time() - cpu0, "rss": max(0, _status_kb("VmHWM") - before) / 1024}


def _limit(cap_mb: int) -> None:
    """In a forked child: one torch thread (the parent's OpenMP pool does not survive the fork) and an address-space
    cap of the current size plus ``cap_mb``."""
    import torch

    torch.set_num_threads(1)
    size = int(open("/proc/self/statm").read().split()[0]) * _PAGE_KB * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + cap_mb * 2**20, size + cap_mb * 2**20))


def run_isolated(fn: Callable[[], object], *, deadline_s: float = 10.0, cap_mb: int = 2048) -> Result:
    """Run ``fn()`` once in a forked child, measured like a fuzz case (``kind`` "isolated"); the outcome is ``ok``,
    the class of the exception it raised, ``timeout``, ``memory`` or ``crash:<signal>``."""
    def case() -> tuple[str, str]:
        try:
            fn()
        except BaseException as exc:
            return classify(exc), f"{type(exc).__name__}: {str(exc)[:500]}"
        return "ok", ""

    read_fd, write_fd = os.pipe()
    start = time.monotonic()
    gc.freeze()  # the child's collections then skip (and do not copy) every object of this process
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            _limit(cap_mb)
            try:
                done = _measure(case)
            except MemoryError:
                done = {"outcome": "memory", "message": "", "wall": 0.0, "cpu": 0.0, "rss": float(cap_mb)}
            os.write(write_fd, json.dumps(done).encode())
        finally:
            os._exit(0)
    gc.unfreeze()
    os.close(write_fd)
    ready, _, _ = select.select([read_fd], [], [], deadline_s)
    raw = os.read(read_fd, 65536) if ready else b""
    worker = _Worker(pid, os.open(os.devnull, os.O_WRONLY), read_fd)
    if raw:
        _end(worker, "done")
        d = json.loads(raw)
        return Result("isolated", 0, "", d["outcome"], d["message"], d["wall"], d["cpu"], d["rss"])
    worker.case, worker.started = ("isolated", 0), start
    return _end(worker, "timeout" if not ready else "crash")


def _worker(tasks: int, results: int, seeds: dict, folder: Path, seed: int, cap_mb: int) -> None:
    """Loop: read ``kind index`` from ``tasks``, write the mutated file, report ``start`` then the measurement."""
    _limit(cap_mb)
    reader = os.fdopen(tasks, "r")
    for line in reader:
        name, index = line.split()
        kind, (data, config) = KINDS[name], seeds[name]
        label, mutated = mutate(random.Random(f"{seed}/{name}/{index}"), data, kind.fmt, config)
        path = folder / f"case-{os.getpid()}-{name}-{index}{kind.suffix}"
        path.write_bytes(mutated)
        del mutated
        os.write(results, (json.dumps({"start": label, "path": str(path)}) + "\n").encode())
        try:
            done = _measure(lambda kind=kind, path=path: run_steps(kind, path))
        except MemoryError:
            done = {"outcome": "memory", "message": "", "wall": 0.0, "cpu": 0.0, "rss": float(cap_mb)}
        path.unlink(missing_ok=True)
        os.write(results, (json.dumps(done) + "\n").encode())
        if done["outcome"] == "memory":
            break
    os._exit(0)


@dataclass
class _Worker:
    pid: int
    tasks: int
    results: int
    buffer: bytes = b""
    case: tuple[str, int] | None = None
    label: str = ""
    path: str = ""
    started: float = 0.0


def _spawn(seeds: dict, folder: Path, seed: int, cap_mb: int) -> _Worker:
    task_r, task_w = os.pipe()
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(task_w)
        os.close(result_r)
        try:
            _worker(task_r, result_w, seeds, folder, seed, cap_mb)
        finally:
            os._exit(1)
    os.close(task_r)
    os.close(result_w)
    return _Worker(pid, task_w, result_r)


def _end(worker: _Worker, outcome: str) -> Result | None:
    """Kill and reap ``worker``; the :class:`Result` (``outcome``: ``timeout`` or ``crash``, refined by the exit
    signal) of the case it was running, if any."""
    try:
        os.kill(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _, status = os.waitpid(worker.pid, 0)
    os.close(worker.tasks)
    os.close(worker.results)
    if worker.case is None:
        return None
    if worker.path:
        Path(worker.path).unlink(missing_ok=True)
    if outcome == "crash" and os.WIFSIGNALED(status) and os.WTERMSIG(status) != signal.SIGKILL:
        outcome = f"crash:{signal.Signals(os.WTERMSIG(status)).name}"
    elif outcome == "crash":
        outcome = "crash:exit"
    return Result(worker.case[0], worker.case[1], worker.label, outcome, "", time.monotonic() - worker.started,
                  time.monotonic() - worker.started, 0.0)


def run_cases(cases: list[tuple[str, int]], seeds: dict, folder: Path, seed: int, *, jobs: int = 2,
              deadline_s: float = 10.0, cap_mb: int = 2048) -> Iterator[Result]:
    """Run ``(kind, index)`` cases on ``jobs`` workers; yields each :class:`Result` as it ends."""
    gc.freeze()  # the workers then share the parent's objects without copying their pages
    pending = list(reversed(cases))
    workers = [_spawn(seeds, folder, seed, cap_mb) for _ in range(min(jobs, len(cases)))]
    while workers:
        for w in workers:
            if w.case is None and pending:
                w.case, w.label, w.path, w.started = pending.pop(), "(writing the file)", "", time.monotonic()
                os.write(w.tasks, f"{w.case[0]} {w.case[1]}\n".encode())
        ready, _, _ = select.select([w.results for w in workers], [], [], 0.05)
        for w in list(workers):
            if w.results in ready:
                chunk = os.read(w.results, 65536)
                if not chunk:  # the worker died: a crash, or its exit after a memory outcome
                    workers.remove(w)
                    result = _end(w, "crash")
                    if result:
                        yield result
                    if pending:
                        workers.append(_spawn(seeds, folder, seed, cap_mb))
                    continue
                w.buffer += chunk
                *lines, w.buffer = w.buffer.split(b"\n")
                for line in lines:
                    message = json.loads(line)
                    if "start" in message:
                        w.label, w.path, w.started = message["start"], message["path"], time.monotonic()
                    else:
                        yield Result(w.case[0], w.case[1], w.label, message["outcome"], message["message"],
                                     message["wall"], message["cpu"], message["rss"])
                        w.case = None
            elif w.case is not None and time.monotonic() - w.started > deadline_s:
                workers.remove(w)
                yield _end(w, "timeout")
                if pending:
                    workers.append(_spawn(seeds, folder, seed, cap_mb))
        for w in list(workers):
            if w.case is None and not pending:  # nothing left for it
                workers.remove(w)
                _end(w, "idle")
    gc.unfreeze()


def fuzz(kinds: list[str], per_kind: int | dict[str, int], seed: int, *, jobs: int = 2, deadline_s: float = 10.0,
         on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Build the seed files, run ``per_kind`` mutations of each kind (a number, or kind → number; kinds
    interleaved) and return every :class:`Result`."""
    results = []
    with tempfile.TemporaryDirectory(prefix="rs-ltxv-fuzz-") as tmp:
        folder = Path(tmp)
        seeds = {}
        for name in kinds:
            path = folder / f"seed-{name}{KINDS[name].suffix}"
            config = KINDS[name].build(path)
            seeds[name] = (path.read_bytes(), config)
            warm_up(KINDS[name], path)
        counts = per_kind if isinstance(per_kind, dict) else dict.fromkeys(kinds, per_kind)
        cases = [(name, index) for index in range(max(counts.values(), default=0)) for name in kinds
                 if index < counts.get(name, 0)]
        for result in run_cases(cases, seeds, folder, seed, jobs=jobs, deadline_s=deadline_s):
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
