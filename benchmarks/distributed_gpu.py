"""Ulysses sequence parallelism on 1, 2, 4 … GPUs with NCCL: seconds per forward, peak ``max_memory_allocated``
per rank vs one GPU, and the bfloat16 error of the sharded forward vs float32 next to single-GPU bfloat16's,
measured side by side in one run. LTX-2.3 widths (video 32 heads × 128, audio 32 × 64) with random weights and
``--layers`` blocks (48 in the real model; memory and time per block scale linearly).

    python benchmarks/distributed_gpu.py [--gpus 4] [--frames 16 --height 34 --width 60] [--layers 4]

``--cpu`` runs the same on CPU ranks with gloo (a smoke check of the script on a machine without GPUs; its numbers say
nothing about GPUs).
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
import time
from dataclasses import replace

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _build(args, device: torch.device, dtype: torch.dtype):
    from rs_ltxv.ltx.config import TransformerConfig
    from rs_ltxv.ltx.tokens import audio_positions, video_positions
    from rs_ltxv.ltx.transformer import LTXAVTransformer, StreamInput

    cfg = replace(TransformerConfig(), num_layers=args.layers) if not args.cpu else replace(
        TransformerConfig(), num_layers=args.layers, num_attention_heads=8, attention_head_dim=32,
        audio_num_attention_heads=8, audio_attention_head_dim=16, cross_attention_dim=256,
        audio_cross_attention_dim=128)
    cfg = replace(cfg, apply_gated_attention=True, cross_attention_adaln=True, caption_proj_before_connector=True)
    torch.manual_seed(0)
    with torch.device("meta"):
        model = LTXAVTransformer(cfg)
    model = model.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(0)  # the same weights on every rank and for both dtypes
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, device=device) * (p.shape[-1] ** -0.5 if p.ndim > 1 else 0.02))
    model = model.to(dtype).eval()
    f, h, w = args.frames, args.height, args.width
    n, na = f * h * w, args.audio_tokens
    v_ctx, a_ctx = model.context_dim
    g = torch.Generator(device="cpu").manual_seed(1)
    sigma = torch.tensor([0.7])

    def stream(tokens, channels, positions, ctx):
        return StreamInput(torch.randn(1, tokens, channels, generator=g).to(device, dtype), sigma.to(device),
                           sigma.expand(1, tokens).to(device), positions.to(device, dtype),
                           torch.randn(1, 128, ctx, generator=g).to(device, dtype))

    video = stream(n, cfg.in_channels, video_positions(1, f, h, w, 24.0), v_ctx)
    audio = stream(na, cfg.audio_in_channels, audio_positions(1, na), a_ctx)
    return model, video, audio


def _rank(rank: int, world: int, store: str, args, out_dir: str) -> None:
    from rs_ltxv.distributed.comm import Group
    from rs_ltxv.distributed.patches import sequence_parallel

    device = torch.device("cpu") if args.cpu else torch.device("cuda", rank)
    if not args.cpu:
        torch.cuda.set_device(device)
    backend = "gloo" if args.cpu else "nccl"
    dist.init_process_group(backend, init_method=f"file://{store}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=600))
    result = {}
    try:
        for dtype in (torch.bfloat16, torch.float32):
            model, video, audio = _build(args, device, dtype)
            with torch.no_grad(), sequence_parallel(model, Group.current()):
                model(video, audio)  # warm-up
                if not args.cpu:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()
                times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    v, _a = model(video, audio)
                    if not args.cpu:
                        torch.cuda.synchronize()
                    times.append(time.perf_counter() - t0)
                peak = torch.cuda.max_memory_allocated() - base if not args.cpu else 0
            result[str(dtype)] = {"s": sorted(times)[len(times) // 2], "peak": peak, "v": v.float().cpu()}
            del model, video, audio, v
            if not args.cpu:
                torch.cuda.empty_cache()
    finally:
        dist.destroy_process_group()
    if rank == 0:
        torch.save(result, os.path.join(out_dir, f"w{world}.pt"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpus", type=int, default=torch.cuda.device_count() or 2)
    ap.add_argument("--frames", type=int, default=16, help="latent frames (121 pixel frames = 16)")
    ap.add_argument("--height", type=int, default=34, help="latent rows (1088 px = 34)")
    ap.add_argument("--width", type=int, default=60, help="latent columns (1920 px = 60)")
    ap.add_argument("--audio-tokens", type=int, default=126)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpu", action="store_true", help="gloo on CPU ranks (smoke check only)")
    args = ap.parse_args()
    if not args.cpu and torch.cuda.device_count() < 2:
        raise SystemExit("needs 2 or more CUDA GPUs (or --cpu for a smoke check)")
    worlds = [w for w in (1, 2, 4, 8) if w <= args.gpus]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for world in worlds:
            mp.start_processes(_rank, args=(world, os.path.join(tmp, f"store{world}"), args, tmp), nprocs=world,
                               start_method="spawn")
            results[world] = torch.load(os.path.join(tmp, f"w{world}.pt"))
    tokens = args.frames * args.height * args.width
    print(f"{tokens} video tokens, {args.audio_tokens} audio tokens, {args.layers} blocks, "
          f"{'CPU/gloo' if args.cpu else torch.cuda.get_device_name(0)}")
    bf, fp = "torch.bfloat16", "torch.float32"
    ref = results[1][fp]["v"]
    scale = ref.abs().max()
    for world, r in results.items():
        err = float((r[bf]["v"] - ref).abs().max() / scale)
        line = (f"W={world}: {r[bf]['s']:.3f} s/forward bf16 (speed-up {results[1][bf]['s'] / r[bf]['s']:.2f}x), "
                f"bf16 max|Δ| vs fp32 W=1 {err:.4f} of max|ref|")
        if not args.cpu:
            ratio = r[bf]["peak"] / results[1][bf]["peak"]
            line += f", peak allocated {r[bf]['peak'] / 2**30:.2f} GiB (ratio to W=1 {ratio:.2f})"
        print(line)


if __name__ == "__main__":
    main()
