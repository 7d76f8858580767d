"""Ulysses sequence parallelism on this CPU with gloo: per-rank peak activation memory at W=2 vs one process, bytes
sent per rank per block vs the formula, and time per forward at W=1 and W=2, measured side by side in one run.

Memory is each process's resident high-water mark during one forward (``VmHWM`` after resetting it with
``/proc/self/clear_refs``) minus its resident size just before (weights and inputs excluded); glibc is told to
``mmap`` allocations ≥ 64 KiB so freed activations leave the process (``MALLOC_MMAP_THRESHOLD_``). Medium config:
video 8 heads × 64, audio 8 × 32, 2 layers, 128 latent channels, batch 1, float32. Every process gets the same number
of threads per core (W=1: 2 threads on the 2 cores; W=2: 1 thread per rank).

    scripts/dev.sh python benchmarks/distributed_cpu.py [--frames 16 --height 32 --width 32]  # 16 384 video tokens

The failure-detection time of the Ray pool is printed by ``benchmarks/distributed_ray_faults.py`` when present.
Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _model_and_inputs(args):
    from rs_ltxv.ltx.tiny import tiny_config
    from rs_ltxv.ltx.tokens import audio_positions, video_positions
    from rs_ltxv.ltx.transformer import LTXAVTransformer, StreamInput

    cfg = replace(tiny_config("2.3", layers=args.layers), num_attention_heads=8, attention_head_dim=64,
                  audio_num_attention_heads=8, audio_attention_head_dim=32, cross_attention_dim=512,
                  audio_cross_attention_dim=256)
    cfg = replace(cfg, video_connector=replace(cfg.video_connector, attention_head_dim=256),
                  audio_connector=replace(cfg.audio_connector, attention_head_dim=128))
    torch.manual_seed(0)
    model = LTXAVTransformer(cfg).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    f, h, w = args.frames, args.height, args.width
    n, na = f * h * w, args.audio_tokens
    v_ctx, a_ctx = model.context_dim
    sigma = torch.tensor([0.7])
    video = StreamInput(torch.randn(1, n, cfg.in_channels), sigma, sigma.expand(1, n),
                        video_positions(1, f, h, w, 24.0), torch.randn(1, 64, v_ctx))
    audio = StreamInput(torch.randn(1, na, cfg.audio_in_channels), sigma, sigma.expand(1, na),
                        audio_positions(1, na), torch.randn(1, 64, a_ctx))
    return model, video, audio


def _measure(fn) -> tuple[int, float]:
    """(activation bytes above the resident size before the call, seconds) of one call."""
    Path("/proc/self/clear_refs").write_text("5")
    base = _status("VmRSS")
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    return _status("VmHWM") - base, seconds


def _rank(rank: int, world: int, store: str, args, out: str) -> None:
    from rs_ltxv.distributed.comm import Group, TrafficMeter
    from rs_ltxv.distributed.patches import sequence_parallel

    torch.set_num_threads(max(1, args.cores // world))
    model, video, audio = _model_and_inputs(args)
    result = {}
    with torch.no_grad():
        if world == 1:
            result["bytes"], result["s"] = _measure(lambda: model(video, audio))
            result["sent"] = 0
        else:
            os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
            dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                                    timeout=datetime.timedelta(seconds=600))
            with sequence_parallel(model, Group.current()), TrafficMeter() as meter:
                model(video, audio)  # warm-up: the first collective sets up connections
                meter.sent["all_to_all"] = 0
                result["bytes"], result["s"] = _measure(lambda: model(video, audio))
            result["sent"] = meter.sent["all_to_all"]
            dist.destroy_process_group()
    torch.save(result, os.path.join(out, f"w{world}r{rank}.pt"))


def _run(world: int, args, tmp: str) -> list[dict]:
    store = os.path.join(tmp, f"store{world}")
    mp.start_processes(_rank, args=(world, store, args, tmp), nprocs=world, start_method="spawn")
    return [torch.load(os.path.join(tmp, f"w{world}r{r}.pt")) for r in range(world)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=16, help="latent frames")
    ap.add_argument("--height", type=int, default=32, help="latent rows")
    ap.add_argument("--width", type=int, default=32, help="latent columns")
    ap.add_argument("--audio-tokens", type=int, default=200)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"  # inherited by the spawned processes
    tokens = args.frames * args.height * args.width
    with tempfile.TemporaryDirectory() as tmp:
        single = _run(1, args, tmp)[0]
        ranks = _run(2, args, tmp)
    mib = 2**20
    worst = max(ranks, key=lambda r: r["bytes"])
    print(f"video tokens {tokens}, audio tokens {args.audio_tokens}, {args.layers} layers, float32, "
          f"{args.cores} cores")
    print(f"peak activation memory: single {single['bytes'] / mib:.0f} MiB; W=2 ranks "
          + " / ".join(f"{r['bytes'] / mib:.0f}" for r in ranks)
          + f" MiB; ratio (largest rank / single) {worst['bytes'] / single['bytes']:.2f} (goal ≤ 0.55)")
    # formula: per block per rank, q/k/v/out of video self-attention (4 × 512 wide) + k/v of video→audio (2 × 256)
    t_r = (tokens + 1) // 2
    formula = (4 * 512 + 2 * 256) * 4 * t_r * (2 - 1) / 2
    sent = ranks[0]["sent"] / args.layers
    print(f"all-to-all bytes sent by rank 0 per block: {sent / mib:.2f} MiB; formula (4·D_v + 2·D_a2v)·4 B·t_r·(W−1)/W "
          f"= {formula / mib:.2f} MiB; ratio {sent / formula:.3f}")
    print(f"time per forward: W=1 {single['s']:.2f} s, W=2 {max(r['s'] for r in ranks):.2f} s; "
          f"speed-up {single['s'] / max(r['s'] for r in ranks):.2f}x")


if __name__ == "__main__":
    main()
