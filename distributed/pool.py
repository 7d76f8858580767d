"""Driver side of a multi-GPU run: the workers (one Ray actor per rank) and the loop that waits for them.

:class:`WorkerPool` starts W actors (:mod:`.host`; one GPU each, or one CPU each on CPU ranks) in a PACK placement
group, non-detached and never restarted by Ray, joins them into one process group (on the loopback interface when
every rank is on one node, else at rank 0's node address), loads the model once per :class:`~.recipe.LoadRecipe`,
and runs stage jobs. While a job runs, a ``ray.wait`` loop (every :data:`POLL_S` s) forwards rank 0's progress,
forwards a cancel request, and on the first failure of any rank kills every actor and raises
:class:`~.errors.DistributedError` naming the rank (a dead rank: :class:`~.errors.WorkerDied`; a hung rank: found by
pinging every rank on the actors' control thread after the others timed out waiting for it). The next run starts a
new pool. Ray (:mod:`.cluster`) is imported only inside functions.
"""

from __future__ import annotations

import atexit
import os
import time
from typing import Any

from ..ltx.errors import Cancelled
from .cluster import check_capacity, ensure_ray, import_ray
from .config import ParallelConfig
from .errors import DistributedError, WorkerDied, project_error_class
from .recipe import LoadRecipe, recipe_key
from .wire import encode

#: seconds between two looks at the workers while a job runs (progress, cancel)
POLL_S = 0.25
#: seconds to wait for the other ranks' outcome after the first failure, before naming the cause
GRACE_S = 1.0
#: seconds a ping may take before the rank counts as unresponsive
PING_S = 2.0
#: seconds Ray may take to reserve the ranks' GPU / CPU slots
PLACE_S = 60.0
#: seconds the workers may take to start (import torch, the pack)
START_S = 180.0
#: seconds to wait for killed workers' processes on this node to be gone
REAP_S = 5.0
#: what :attr:`WorkerPool.last_run` keeps of each rank's stage result
REPORTED = ("steps", "digest", "seconds", "error", "shapes", "peak_bytes")
#: error text of a collective that failed because of another rank (a timeout, a closed connection)
COMM_FAILURE = ("timed out", "timeout", "connection closed", "connection reset", "connection refused", "broken pipe",
                "peer", "nccl", "gloo", "distbackenderror", "distnetworkerror")


def _cause(exc: BaseException) -> BaseException:
    """The worker's own exception inside a ``RayTaskError`` (else ``exc``)."""
    return getattr(exc, "cause", None) or exc


def _summary(exc: BaseException) -> str:
    cause = _cause(exc)
    lines = [line for line in str(cause).splitlines() if line.strip()]
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"[:300]


def is_comm_failure(exc: BaseException) -> bool:
    """Whether a rank's error came from a collective that failed because of another rank (timeout, closed
    connection), rather than from that rank itself."""
    cause = _cause(exc)
    text = f"{type(cause).__name__} {cause}".lower()
    return any(word in text for word in COMM_FAILURE)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


class WorkerPool:
    """W Ray actors, one per rank, in one process group (see the module docstring).

    Attributes:
        last_run: what each rank reported about the last job (rank → ``steps``, ``digest`` of its latents,
            ``seconds``, ``error``, ``shapes`` of its sharded video state, ``peak_bytes`` above the level at the
            stage's start).
        pids / nodes: the last started workers' process ids and node addresses (rank → value).
        start_seconds: how long the last start took (Ray placement, worker start, process group).
    """

    def __init__(self, config: ParallelConfig) -> None:
        self.config = config
        self.actors: list[Any] = []
        self.pids: dict[int, int] = {}
        self.nodes: dict[int, str] = {}
        self.key: str | None = None
        self.last_run: dict[int, dict[str, Any]] = {}
        self.start_seconds = 0.0
        self._pg: Any = None
        self._job = 0

    @property
    def running(self) -> bool:
        """Whether workers are up."""
        return bool(self.actors)

    def start(self) -> None:
        """Start the W workers and join them into a process group (NCCL on GPUs, gloo on CPU ranks).

        Raises:
            InputError: see :func:`check_capacity`.
            DistributedError: Ray could not place or start the workers, or they could not form a group (the
                message names the rank); every worker started is stopped again.
        """
        from ray.util.placement_group import placement_group

        from .host import actor_class, pack_root

        start = time.monotonic()
        ray = ensure_ray(self.config)
        gpu = check_capacity(self.config)
        bundle = {"GPU": 1, "CPU": 1} if gpu else {"CPU": 1}
        self._pg = placement_group([bundle] * self.config.gpus, strategy="PACK")
        try:
            self._start(ray, actor_class(), pack_root(), gpu)
        except BaseException:
            self.shutdown()
            raise
        self.start_seconds = time.monotonic() - start

    def _start(self, ray: Any, cls: Any, root: str, gpu: bool) -> None:
        """:meth:`start` once the placement group is asked for."""
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        world = self.config.gpus
        try:
            ray.get(self._pg.ready(), timeout=PLACE_S)
        except Exception as exc:
            free = {k: v for k, v in ray.available_resources().items() if k in ("CPU", "GPU")}
            raise DistributedError(f"Ray could not reserve {world} {'GPU' if gpu else 'CPU'} slots within "
                                   f"{PLACE_S:g} s ({_summary(exc)}; free now: {free}); something else holds them. "
                                   "Free them or use fewer gpus.") from exc
        self.actors = [cls.options(num_cpus=1, num_gpus=1 if gpu else 0, max_restarts=0, max_task_retries=0,
                                   scheduling_strategy=PlacementGroupSchedulingStrategy(
                                       self._pg, placement_group_bundle_index=rank))
                       .remote(root, rank, world, gpu, 1) for rank in range(world)]
        pings = self._gather([a.ping.remote() for a in self.actors], "start-up", timeout=START_S)
        self.pids = {r: p["pid"] for r, p in enumerate(pings)}
        self.nodes = {r: p["node"] for r, p in enumerate(pings)}
        # one node: the group meets on the loopback interface; several: at rank 0's node address
        master = "127.0.0.1" if len(set(self.nodes.values())) == 1 else self.nodes[0]
        port = self._gather([self.actors[0].free_port.remote(master)], "start-up", timeout=START_S)[0]
        backend = "nccl" if gpu else "gloo"
        timeout = self.config.comm_timeout_s
        self._gather([a.connect.remote(master, port, backend, timeout) for a in self.actors], "start-up",
                     timeout=timeout + 30)

    def ensure_loaded(self, recipe: LoadRecipe) -> None:
        """Have every worker load ``recipe``'s model (once per :func:`~.recipe.recipe_key`; starts the pool first).

        Raises:
            CheckpointError / InputError: the workers could not load it (e.g. the file is missing on a node).
            DistributedError: a worker died or failed while loading.
        """
        if not self.running:
            self.start()
        key = recipe_key(recipe)
        if key == self.key:
            return
        ray = import_ray()
        ref = ray.put(encode(recipe))
        results = self._gather([a.load.remote(key, ref) for a in self.actors], "loading the model")
        self._raise_errors(results, "loading the model")
        self.key = key

    def run_stage(self, stage: dict[str, Any], *, progress: Any = None, cancel: Any = None,
                  fault: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one stage job (:func:`~.wire.encode_stage` data) on every rank and return rank 0's result (see
        :meth:`~.worker.RankWorker.run_stage`). ``progress(done, total)`` is called here once per step rank 0
        finished; ``cancel()`` is asked every :data:`POLL_S` s and, once True (or raising), stops every rank at the
        same step. ``fault`` is the workers' test-only fault hook.

        Raises:
            Cancelled / NonFiniteError / InputError …: the project error the ranks stopped with (the driver's class
                of that name); an exception raised by ``cancel`` or ``progress`` (after the ranks stopped).
            DistributedError / WorkerDied: a rank died, hung or failed (every worker is stopped).
        """
        ray = import_ray()
        self._job += 1
        job = self._job
        ref = ray.put(stage)
        refs = [a.run_stage.remote(job, ref, fault) for a in self.actors]
        self.last_run = {}
        results = self._gather(refs, "the stage", progress=progress, cancel=cancel, job=job)
        self._raise_errors(results, "the stage")
        return results[0]

    def _forward_progress(self, progress: Any) -> None:
        """Call ``progress`` for every step rank 0 reported since the last look."""
        ray = import_ray()
        try:
            ticks = ray.get(self.actors[0].progress.remote(), timeout=PING_S)
        except Exception:  # a dead or stuck rank 0 shows in its job's result
            return
        for done, total in ticks:
            progress(done, total)

    def _send_cancel(self, job: int) -> None:
        for actor in self.actors:
            actor.cancel.remote(job)

    def _gather(self, refs: list[Any], what: str, *, progress: Any = None, cancel: Any = None, job: int | None = None,
                timeout: float | None = None) -> list[Any]:
        """Every rank's result of ``refs`` (rank order), forwarding progress and cancel meanwhile. When a rank
        stops with a project error and another has not finished :data:`GRACE_S` s later (it waits for the first in a
        collective), the pool is stopped and that rank's result is None.

        Raises:
            DistributedError / WorkerDied: a rank failed (see :meth:`_fail`), or ``timeout`` s passed.
            BaseException: what ``cancel()`` / ``progress()`` / Ctrl-C raised, once the ranks have stopped.
        """
        ray = import_ray()
        pending = dict(zip(refs, range(len(refs)), strict=True))
        results: dict[int, Any] = {}
        stop: BaseException | None = None
        stop_by: float | None = None
        error_by: float | None = None
        deadline = None if timeout is None else time.monotonic() + timeout
        while pending:
            try:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                if progress is not None:
                    self._forward_progress(progress)
                if cancel is not None and stop is None and job is not None and cancel():
                    self._send_cancel(job)
                    cancel = None
            except BaseException as exc:  # cancel()/progress() raised (ComfyUI's interrupt) or Ctrl-C
                if stop is not None or job is None:
                    self.shutdown()
                    raise
                stop, stop_by, cancel = exc, time.monotonic() + max(10.0, 2 * POLL_S), None
                self._send_cancel(job)
                continue
            for ref in ready:
                rank = pending.pop(ref)
                try:
                    results[rank] = ray.get(ref)
                except Exception as exc:
                    self._fail(rank, exc, pending, what)
                if isinstance(results[rank], dict) and "error" in results[rank] and error_by is None:
                    error_by = time.monotonic() + GRACE_S
            now = time.monotonic()
            if pending and error_by is not None and now > error_by:
                # one rank stopped with a project error, the others wait for it in a collective
                self.shutdown()
                break
            if pending and stop_by is not None and now > stop_by:
                self.shutdown()
                raise stop
            if pending and deadline is not None and now > deadline:
                ranks = sorted(pending.values())
                self.shutdown()
                raise DistributedError(f"{_ranks(ranks, self)} did not answer within {timeout:g} s during {what}; "
                                       "every worker was stopped. Check the Ray logs of that node; the next run "
                                       "starts new workers.")
        if progress is not None and self.actors:
            self._forward_progress(progress)
        if job is not None:
            self.last_run = {r: {k: res.get(k) for k in REPORTED} for r, res in results.items()
                             if isinstance(res, dict)}
        if stop is not None:
            raise stop
        return [results.get(r) for r in range(len(refs))]  # None: stopped after another rank's project error

    def _raise_errors(self, results: list[Any], what: str) -> None:
        """Raise the project error rank 0 (else the first rank) stopped with, if any; the pool is stopped unless
        every rank stopped with the same error (e.g. all cancelled at the same step).

        Raises:
            RSLTXVError: that error, as the driver's class of the same name (DistributedError when unknown).
        """
        errors = {r: res["error"] for r, res in enumerate(results) if isinstance(res, dict) and "error" in res}
        if not errors:
            return
        if len(errors) < len(results) or len({e["type"] for e in errors.values()}) > 1:
            self.shutdown()  # the ranks are no longer in step
        rank, info = min(errors.items())
        cls = project_error_class(info["type"])
        if cls is None:
            raise DistributedError(f"rank {rank} failed during {what}: {info['type']}: {info['message']}")
        if cls is Cancelled or len(errors) == len(results):
            raise cls(info["message"])
        raise cls(f"{info['message']} (rank {rank})")

    def _fail(self, rank: int, exc: BaseException, pending: dict[Any, int], what: str) -> None:
        """A rank's call failed: gather the others' outcome for :data:`GRACE_S` s, name the cause, stop the pool.

        Raises:
            WorkerDied: a rank's process died.
            DistributedError: a rank stopped responding (the others timed out in a collective waiting for it), or a
                rank failed by itself.
        """
        ray = import_ray()
        failed = {rank: exc}
        end = time.monotonic() + GRACE_S
        while pending and time.monotonic() < end:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=max(0.0, end - time.monotonic()))
            for ref in ready:
                r = pending.pop(ref)
                try:
                    ray.get(ref)
                except Exception as e:
                    failed[r] = e
        dead = sorted(r for r, e in failed.items() if isinstance(e, ray.exceptions.RayActorError))
        own = sorted(r for r, e in failed.items() if r not in dead and not is_comm_failure(e))
        stuck: list[int] = []
        if not dead and not own:
            stuck = self._unresponsive(sorted(pending.values()))
        self.shutdown()
        after = " Every worker was stopped; the next run starts new ones."
        if dead and what == "start-up":
            r = dead[0]
            raise DistributedError(f"{_rank(r, self)} could not start ({_summary(failed[r])}). Every node needs "
                                   "rs_ltxv importable (the pack at the same path, or pip install rs-ltxv) and torch; "
                                   "the worker's traceback is in the Ray log above.") from failed[r]
        if dead:
            r = dead[0]
            raise WorkerDied(f"{_rank(r, self)} died during {what} ({_summary(failed[r])}).{after} A worker that dies "
                             "without an error message was usually killed for lack of memory (host RAM or VRAM): "
                             "use fewer frames or a smaller size, or more GPUs.") from failed[r]
        if own:
            r = own[0]
            raise DistributedError(f"{_rank(r, self)} failed during {what}: {_summary(failed[r])}.{after}") \
                from failed[r]
        names = stuck or sorted(pending.values())
        waited = _ranks(sorted(failed))
        if names:
            raise DistributedError(
                f"{_ranks(names, self)} stopped responding during {what}: {waited} waited "
                f"{self.config.comm_timeout_s:g} s (comm_timeout_s) for it in a collective.{after} If the run is "
                "just slow (first steps on a large video, a slow network), raise comm_timeout_s.") from exc
        raise DistributedError(f"{_rank(rank, self)} lost contact with the other ranks during {what}: "
                               f"{_summary(exc)}.{after}") from exc

    def _unresponsive(self, candidates: list[int]) -> list[int]:
        """Among the ranks still running, those that do not answer a ping within :data:`PING_S` s or lag behind in
        cancel checks (they never reached the collective the others waited in)."""
        if not candidates:
            return []
        ray = import_ray()
        refs = {r: self.actors[r].ping.remote() for r in candidates}
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=PING_S)
        answers: dict[int, dict[str, Any]] = {}
        for r, ref in refs.items():
            if ref in ready:
                try:
                    answers[r] = ray.get(ref)
                except Exception:
                    pass
        silent = [r for r in candidates if r not in answers]
        if silent:
            return silent
        idle = [r for r in candidates if not answers[r]["in_flag"]]
        if not idle:
            return candidates
        least = min(answers[r]["flags"] for r in idle)
        return [r for r in idle if answers[r]["flags"] == least]

    def shutdown(self) -> None:
        """Kill every worker (and their placement group) and wait up to :data:`REAP_S` s for their processes on this
        node to be gone; the pool can start again."""
        actors, pg, pids = self.actors, self._pg, dict(self.pids)
        self.actors, self._pg, self.key = [], None, None
        if not actors and pg is None:
            return
        ray = import_ray()
        for actor in actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:
                pass
        if pg is not None:
            try:
                from ray.util.placement_group import remove_placement_group

                remove_placement_group(pg)
            except Exception:
                pass
        from .host import node_ip

        here = node_ip() if ray.is_initialized() else None
        local = [pid for r, pid in pids.items() if self.nodes.get(r) == here]
        end = time.monotonic() + REAP_S
        while any(_alive(pid) for pid in local) and time.monotonic() < end:
            time.sleep(0.02)


def _rank(rank: int, pool: WorkerPool) -> str:
    """``rank r (pid p on node n)``."""
    pid, node = pool.pids.get(rank), pool.nodes.get(rank)
    return f"rank {rank}" + (f" (pid {pid} on {node})" if pid is not None else "")


def _ranks(ranks: list[int], pool: WorkerPool | None = None) -> str:
    if len(ranks) == 1:
        return _rank(ranks[0], pool) if pool is not None else f"rank {ranks[0]}"
    return "ranks " + ", ".join(str(r) for r in ranks)


_POOL: list[WorkerPool] = []


def get_pool(config: ParallelConfig) -> WorkerPool:
    """The pool for ``config``: the running one when it was started for the same ranks, address, backend and
    timeout, else a new one (the old one is stopped). Registers :func:`shutdown_pool` to run at exit."""
    same = ("gpus", "ray_address", "backend", "comm_timeout_s")
    if _POOL and all(getattr(_POOL[0].config, f) == getattr(config, f) for f in same):
        _POOL[0].config = config
        return _POOL[0]
    shutdown_pool()
    if not _POOL:
        atexit.register(shutdown_pool)
    _POOL[:] = [WorkerPool(config)]
    return _POOL[0]


def current_pool() -> WorkerPool | None:
    """The pool of the last run, if any (its workers may be stopped)."""
    return _POOL[0] if _POOL else None


def shutdown_pool() -> None:
    """Stop the workers of the current pool (if any); the next run starts new ones."""
    if _POOL:
        _POOL[0].shutdown()

