"""One rank of a multi-GPU run, inside its Ray worker process (:class:`RankWorker`, driven by the actor of
:mod:`.host`).

A rank joins the torch.distributed group (gloo on CPU ranks, NCCL on GPUs) at rank 0's node, loads the transformer
from a :class:`~.recipe.LoadRecipe` (kept while the recipe stays the same) and runs whole denoising stages:
:func:`~rs_ltxv.ltx.pipeline.stage.run_stage` with the pipeline's own ``Denoiser`` on the sequence-parallel model
(:func:`~.patches.sequence_parallel`). Every rank computes the same sampler steps on the same inputs, so all ranks
stay in lockstep; the cancel decision is rank 0's, broadcast to all before every model call
(:func:`~.comm.broadcast_flag`, a collective), and only rank 0 reports progress and returns the latents.

Project errors (:class:`~rs_ltxv.ltx.errors.RSLTXVError` subclasses such as ``Cancelled``, ``NonFiniteError``,
``InputError``) come back as ``{"type": class name, "message": text}``; the driver raises its own class of that name.
"""

from __future__ import annotations

import collections
import gc
import hashlib
import os
import socket
import threading
import time
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from ..ltx.errors import RSLTXVError
from ..ltx.pipeline.sampling import Callbacks
from ..ltx.pipeline.stage import run_stage
from .comm import Group, broadcast_flag
from .recipe import load_from_recipe
from .wire import decode, decode_stage

#: loopback addresses: a group whose rank 0 listens there keeps gloo / NCCL on the loopback interface too
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: the longest a test fault of kind "hang" sleeps (the driver kills the worker long before)
HANG_S = 3600.0


def error_info(exc: BaseException) -> dict[str, str]:
    """A project error as plain data: ``{"type": class name, "message": str(exc)}``."""
    return {"type": type(exc).__name__, "message": str(exc)}


def digest(t: torch.Tensor | None) -> str | None:
    """SHA-1 of a tensor's bytes (any shape and dtype), to show that every rank ended with the same latents."""
    if t is None:
        return None
    return hashlib.sha1(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes; None where there is none."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory_mark(device: torch.device) -> int:
    """Start measuring peak memory on ``device``: reset the peak (CUDA allocator; on Linux CPUs the process's
    resident high-water mark, ``/proc/self/clear_refs``) and return the bytes in use now."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return 0
    return _status_bytes("VmRSS") or 0


def memory_peak(device: torch.device, mark: int) -> int | None:
    """Peak bytes above ``mark`` (:func:`memory_mark`) since the mark: CUDA ``max_memory_allocated``, or the
    resident high-water mark ``VmHWM`` on Linux CPUs; None where it cannot be read."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) - mark
    peak = _status_bytes("VmHWM")
    return None if peak is None else max(0, peak - mark)


class RankWorker:
    """Rank ``rank`` of ``world``: its device (``cuda:0`` of the GPU Ray gave it, or the CPU with ``threads`` torch
    threads), process group, model and the state the driver's control calls read (:meth:`ping`, :meth:`progress`,
    :meth:`cancel` run on another thread while :meth:`run_stage` runs).

    The job may carry a **test-only** fault, ``{"rank": r, "step": s, "kind": "exit" | "hang" | "raise" | "slow",
    "seconds": t}``: from the first cancel check after ``s`` finished steps on, rank ``r`` (None: every rank) exits
    the process (``os._exit``), stops responding (sleeps ``t`` s, default an hour), raises a ``RuntimeError`` (as an
    out-of-memory error would) or sleeps ``t`` s (default 0.1) at every check; the fault tests use it to check how
    the driver reports a dead, hung or failing rank and how cancel stops every rank at the same step.
    """

    def __init__(self, rank: int, world: int, *, use_cuda: bool = False, threads: int = 1) -> None:
        self.rank, self.world = rank, world
        if use_cuda:
            torch.cuda.set_device(0)  # Ray shows each GPU worker only its own GPU
            self.device = torch.device("cuda", 0)
        else:
            torch.set_num_threads(max(1, threads))
            self.device = torch.device("cpu")
        self.group: Group | None = None
        self.model: Any = None
        self.key: str | None = None
        self._job: int | None = None
        self._cancelled = -1  # the latest job id the driver cancelled
        self._cancel = threading.Event()
        self._ticks: collections.deque[tuple[int, int]] = collections.deque()
        self._steps = 0
        self._flags = 0
        self._in_flag = False

    def free_port(self, host: str) -> int:
        """A TCP port that is free on ``host`` (this node's address) now, for the group's rendezvous."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            return s.getsockname()[1]

    def connect(self, master: str, port: int, backend: str, timeout_s: float) -> float:
        """Join the process group at ``tcp://master:port`` with ``backend`` ("gloo" / "nccl") and a collective
        timeout of ``timeout_s`` seconds, then run one collective to prove it works; returns the seconds it took."""
        start = time.monotonic()
        if master in LOOPBACK:
            os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
            os.environ.setdefault("NCCL_SOCKET_IFNAME", "lo")
        host = f"[{master}]" if ":" in master else master
        dist.init_process_group(backend, init_method=f"tcp://{host}:{port}", rank=self.rank, world_size=self.world,
                                timeout=timedelta(seconds=timeout_s))
        self.group = Group.current()
        broadcast_flag(False, self.group)
        return time.monotonic() - start

    def load(self, key: str, recipe: dict[str, Any]) -> dict[str, Any]:
        """Load the transformer of ``recipe`` (a :class:`~.recipe.LoadRecipe` as :mod:`.wire` data) unless the
        model of ``key`` is already loaded; ``{"seconds": …, "cached": bool}`` or ``{"error": error_info}``."""
        if key == self.key and self.model is not None:
            return {"seconds": 0.0, "cached": True}
        start = time.monotonic()
        self.model, self.key = None, None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        try:
            self.model = load_from_recipe(decode(recipe), self.device)
        except RSLTXVError as exc:
            return {"error": error_info(exc)}
        self.key = key
        return {"seconds": time.monotonic() - start, "cached": False}

    def _fault(self, fault: dict[str, Any] | None) -> None:
        """The test-only fault of the class docstring, when this rank and step are reached."""
        if not fault or fault.get("rank") not in (None, self.rank) or self._steps < int(fault.get("step", 0)):
            return
        kind = fault.get("kind")
        if kind == "exit":
            os._exit(1)
        if kind == "raise":
            raise RuntimeError(f"test fault on rank {self.rank}")
        if kind in ("hang", "slow"):
            time.sleep(float(fault.get("seconds", HANG_S if kind == "hang" else 0.1)))

    def _cancel_check(self, fault: dict[str, Any] | None) -> bool:
        """The sampler's ``cancel()``: rank 0's cancel request, the same on every rank (a collective)."""
        self._fault(fault)
        self._flags += 1
        self._in_flag = True
        try:
            return broadcast_flag(self._cancel.is_set(), self.group)
        finally:
            self._in_flag = False

    def _progress(self, done: int, total: int) -> None:
        self._steps = done
        if self.rank == 0:
            self._ticks.append((done, total))

    def run_stage(self, job_id: int, stage: dict[str, Any], fault: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one stage job (:func:`~.wire.encode_stage` data) on the loaded model. Returns ``{"rank", "steps",
        "seconds", "peak_bytes", "digest", "shapes"}`` (``peak_bytes``: :func:`memory_peak` over the stage;
        ``shapes``: this rank's sharded video state in the last forward, :attr:`~.forward.SPForward.last_shapes`)
        plus, on rank 0, ``"video"`` ``(B, C, F', H', W')``, ``"audio"`` ``(B, 8, T, 16)`` or
        None, and ``"seed_state"`` (the noise generator's state after the stage, None for an int seed), all on the
        CPU; or with ``"error"`` (:func:`error_info`) when a project error stopped the stage.

        Raises:
            RuntimeError: no model is loaded or no group joined (the driver's order of calls is wrong); errors of
                the process group (a peer died or timed out), which the driver turns into ``DistributedError``.
        """
        from .patches import sequence_parallel

        if self.model is None or self.group is None:
            raise RuntimeError(f"rank {self.rank}: run_stage before connect/load")
        start = time.monotonic()
        self._cancel.clear()
        self._ticks.clear()
        self._steps, self._flags = 0, 0
        self._job = job_id
        if self._cancelled >= job_id:  # the cancel came before the job started
            self._cancel.set()
        out: dict[str, Any] = {"rank": self.rank}
        mark = memory_mark(self.device)
        try:
            denoiser, inputs = decode_stage(stage, self.model, self.device)
            seed = inputs.seed
            with sequence_parallel(self.model, self.group) as sp:
                video, audio = run_stage(denoiser, inputs, Callbacks(self._progress,
                                                                     lambda: self._cancel_check(fault)))
            out["shapes"] = dict(sp.last_shapes)
        except RSLTXVError as exc:
            out["error"] = error_info(exc)
        else:
            out["digest"] = digest(video) + (digest(audio) or "")
            if self.rank == 0:
                out["video"] = video.to("cpu")
                out["audio"] = None if audio is None else audio.to("cpu")
                out["seed_state"] = seed.get_state() if isinstance(seed, torch.Generator) else None
        finally:
            self._job = None
        out.update(steps=self._steps, seconds=time.monotonic() - start, peak_bytes=memory_peak(self.device, mark))
        return out

    def cancel(self, job_id: int) -> None:
        """Ask job ``job_id`` to stop at its next cancel check (also when it has not started yet; ignored for
        other jobs)."""
        self._cancelled = max(self._cancelled, job_id)
        if self._job == job_id:
            self._cancel.set()

    def progress(self) -> list[tuple[int, int]]:
        """The ``(done, total)`` steps the sampler reported since the last call (rank 0 only; others: empty)."""
        ticks = []
        while self._ticks:
            ticks.append(self._ticks.popleft())
        return ticks

    def ping(self) -> dict[str, Any]:
        """What the driver needs to name a stuck rank: ``rank``, ``pid``, the running ``job`` (None when idle),
        finished ``steps``, cancel checks entered (``flags``) and whether it waits in one now (``in_flag``)."""
        return {"rank": self.rank, "pid": os.getpid(), "job": self._job, "steps": self._steps, "flags": self._flags,
                "in_flag": self._in_flag}

    def close(self) -> None:
        """Leave the process group and drop the model."""
        self.model, self.key = None, None
        if dist.is_initialized():
            dist.destroy_process_group()
        self.group = None
