"""Fuzz the model-file parsers: thousands of seeded mutations of tiny files of each kind, each case run as read →
``info`` → load in a forked child with a deadline and an address-space cap (``tests/reference/fuzz_run.py``, the
harness of ``tests/test_fuzz_parsers.py``). Prints the outcome counts per kind (``ok``, each project error class,
``raw:<Type>`` for any other exception, ``timeout``, ``memory``, ``crash:<signal>``), the slowest cases, the largest
resident-set growths and every case that broke a rule (raw exception, over 2 s CPU, over 300 MB).

    .venv/bin/python benchmarks/fuzz_parsers.py [--cases 3000] [--seed 1] [--kinds ltx_full,gguf,...] [--jobs 2]
                                                [--deadline 10] [--json results.json]

``--cases`` is the total, spread evenly over the kinds. Exit status 1 when a rule was broken.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from reference.fuzz_files import KINDS
from reference.fuzz_run import fuzz, summary

MAX_CPU_S = 2.0
MAX_RSS_MB = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=3000, help="total number of mutated files")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, from {', '.join(KINDS)}")
    parser.add_argument("--jobs", type=int, default=2, help="cases run at the same time")
    parser.add_argument("--deadline", type=float, default=10.0, help="seconds before a case is killed")
    parser.add_argument("--json", type=Path, help="write every result here")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        parser.error(f"unknown kind(s) {unknown}; choose from {list(KINDS)}")
    per_kind = max(1, args.cases // len(kinds))
    start = time.monotonic()
    results = fuzz(kinds, per_kind, args.seed, jobs=args.jobs, deadline_s=args.deadline)
    elapsed = time.monotonic() - start
    print(summary(results, slowest=8))
    broken = [r for r in results if r.outcome.startswith(("raw:", "crash:")) or r.outcome in ("timeout", "memory")
              or r.cpu_s > MAX_CPU_S or r.rss_mb > MAX_RSS_MB]
    if broken:
        print(f"\n{len(broken)} case(s) broke a rule (raw exception, timeout, memory, > {MAX_CPU_S} s CPU or "
              f"> {MAX_RSS_MB:.0f} MB):")
        for r in broken[:40]:
            print(f"  {r.kind}#{r.index} {r.label[:70]!r}: {r.outcome} cpu {r.cpu_s:.2f} s rss +{r.rss_mb:.0f} MB "
                  f"{r.message[:200]}")
    print(f"\n{len(results)} cases ({per_kind} per kind, seed {args.seed}) in {elapsed:.1f} s, {args.jobs} jobs")
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
