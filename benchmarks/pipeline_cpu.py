"""End-to-end time: our distilled two-stage generation (image → video with sound, 2× upscale, decode) vs the same
flow composed from ltx-pipelines 1.0.0, same tiny random weights, float32, CPU. Runs alternate; medians are compared.

    scripts/dev.sh python benchmarks/pipeline_cpu.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from rs_ltxv.ltx.pipeline.generate import generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams
from rs_ltxv.ltx.pipeline.parts import load_model_parts
from rs_ltxv.ltx.pipeline.request import ImageGuide, Request

from reference.ltx_pipelines_ref import FPS, FRAMES, SEED, H, W, build_models, run_reference


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tref, enc, dec, audio, ups, ckpt, ups_path, ctx = build_models(Path(tmp))
        parts = load_model_parts(ckpt, upsampler=ups_path, dtype=torch.float32, tiling=None)
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    none = GuidanceParams()
    req = Request(width=W, height=H, frames=FRAMES, fps=FPS, seed=SEED, steps=8, schedule="auto", upscale=True,
                  images=(ImageGuide(image, 0, 1.0),), video_guidance=none, audio_guidance=none)
    runs = {"ltx-pipelines": lambda: run_reference(tref, enc, dec, audio, ups, ctx, image, False),
            "ours": lambda: generate(parts, req, contexts=(ctx, None))}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():
        fn()  # warm-up
    for i in range(args.repeats):
        order = list(runs.items()) if i % 2 == 0 else list(runs.items())[::-1]
        for name, fn in order:
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    ref, ours = statistics.median(times["ltx-pipelines"]), statistics.median(times["ours"])
    print(f"distilled two-stage, {W}x{H}, {FRAMES} frames, 8 + 3 steps, float32, {args.threads} threads, "
          f"{args.repeats} alternating runs")
    print(f"ltx-pipelines {ref * 1e3:8.1f} ms   ours {ours * 1e3:8.1f} ms   ratio ours/ref {ours / ref:.3f}")


if __name__ == "__main__":
    main()
