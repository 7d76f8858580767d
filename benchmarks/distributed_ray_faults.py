"""The Ray pool of multi-GPU runs on this CPU (2 CPU ranks, gloo): start-up, load, time per step through the workers
vs one process, and how fast failures and cancels are seen — measured in one run, printed, no asserts.

* Ray start (``ray.init``), pool start (placement, 2 workers importing torch and the pack, gloo group), model load;
* s/step of a tiny stage in this process and on the 2 workers (the whole stage runs inside them), one torch
  thread per process;
* a worker that exits mid-stage (test fault ``exit``): seconds until ``WorkerDied``, and until its processes are
  gone (``--repeat`` times), then the restart of a new pool;
* a worker that hangs (test fault ``hang``): seconds until ``DistributedError`` with ``comm_timeout_s`` = 3;
* cancel: seconds from the cancel request until ``Cancelled``, and the step each rank stopped at.

    scripts/dev.sh python benchmarks/distributed_ray_faults.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from rs_ltxv import distributed
from rs_ltxv.distributed import DistributedError, LoadRecipe, ParallelConfig
from rs_ltxv.distributed.cluster import ensure_ray
from rs_ltxv.distributed.pool import current_pool
from rs_ltxv.ltx.errors import Cancelled
from rs_ltxv.ltx.pipeline.generate import generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.request import Request

from reference.ray_cluster import alive, tiny_run

CONFIG = ParallelConfig(gpus=2, backend="gloo", comm_timeout_s=3.0)


def _request(steps: int) -> Request:
    g = GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(1,))
    return Request(width=256, height=128, frames=25, fps=24.0, seed=1, steps=steps, video_guidance=g,
                   audio_guidance=g, decode=False)


def _timed(fn) -> tuple[float, object]:
    start = time.monotonic()
    try:
        out = fn()
    except Exception as exc:  # the fault runs end in an error on purpose
        out = exc
    return time.monotonic() - start, out


def _gone(pids: list[int], limit: float = 10.0) -> float:
    start = time.monotonic()
    while any(alive(p) for p in pids) and time.monotonic() - start < limit:
        time.sleep(0.01)
    return time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="worker-exit runs (default 3)")
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)  # like each worker (a tiny model on 2 threads mostly waits on the other thread)
    with tempfile.TemporaryDirectory() as tmp:
        run = tiny_run(Path(tmp))
        contexts = (run.positive, run.negative)
        t_ray, _ = _timed(lambda: ensure_ray(CONFIG))
        parts = distributed.attach(run.parts, CONFIG, LoadRecipe(run.checkpoint, "float32"))
        runner = parts.stage_runner
        req = _request(args.steps)
        generate(run.parts, _request(1), contexts=contexts)  # warm-up
        t_single, _ = _timed(lambda: generate(run.parts, req, contexts=contexts))
        t_first, _ = _timed(lambda: generate(parts, req, contexts=contexts))
        pool = current_pool()
        t_ray_run, _ = _timed(lambda: generate(parts, req, contexts=contexts))
        rank_s = max(r["seconds"] for r in pool.last_run.values())
        print(f"ray.init {t_ray:.2f} s; pool start {pool.start_seconds:.2f} s; first run incl. start + load "
              f"{t_first:.2f} s")
        print(f"s/step: one process (1 thread) {t_single / args.steps:.3f}, 2 Ray workers (1 thread each) "
              f"{t_ray_run / args.steps:.3f} "
              f"(inside the workers {rank_s / args.steps:.3f}; ratio {t_ray_run / t_single:.2f})")

        for i in range(args.repeat):
            pids = list(current_pool().pids.values())
            runner.inject_fault({"rank": 1, "step": 2, "kind": "exit"})
            took, err = _timed(lambda: generate(parts, req, contexts=contexts))
            reaped = _gone(pids)
            restart, _ = _timed(lambda: generate(parts, _request(1), contexts=contexts))
            print(f"exit #{i + 1}: {type(err).__name__} after {took:.3f} s (processes gone {reaped:.3f} s later); "
                  f"next run incl. a new pool {restart:.2f} s")

        runner.inject_fault({"rank": 1, "step": 2, "kind": "hang"})
        took, err = _timed(lambda: generate(parts, req, contexts=contexts))
        print(f"hang: {type(err).__name__} after {took:.2f} s with comm_timeout_s={CONFIG.comm_timeout_s:g} "
              f"({'named rank 1' if isinstance(err, DistributedError) and 'rank 1' in str(err) else err})")

        generate(parts, _request(1), contexts=contexts)
        asked: list[float] = []
        done: list[int] = []

        def cancel() -> bool:
            if len(done) >= 3 and not asked:
                asked.append(time.monotonic())
            return bool(asked)

        runner.inject_fault({"rank": None, "kind": "slow", "seconds": 0.05})
        took, err = _timed(lambda: generate(parts, _request(40), contexts=contexts, cancel=cancel,
                                            progress=lambda d, t: done.append(d)))
        stopped = [current_pool().last_run[r]["steps"] for r in sorted(current_pool().last_run)]
        latency = time.monotonic() - asked[0] if asked else float("nan")
        outcome = "Cancelled" if isinstance(err, Cancelled) else repr(err)
        print(f"cancel: {outcome}, ranks stopped after steps {stopped}; {latency:.3f} s from the request to the "
              "error (poll every 0.25 s; 0.05 s per step here)")
        distributed.shutdown()


if __name__ == "__main__":
    main()
