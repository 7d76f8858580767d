"""Block offload (``rs_ltxv.ltx.offload.BlockOffload``) vs a fully resident transformer, side by side in one run:
peak weight bytes on the compute device during a forward, one block's bytes, forward time and the time ratio, and
whether the outputs are equal.

Model: the LTX-2.3 layout with random weights at reduced widths (default video 8 heads × 128 = 1024, audio 8 × 64,
``--layers`` 8; per-block cost is what matters), float32 on the CPU, bfloat16 on CUDA; batch 1, ``--video-tokens``
video and ``--audio-tokens`` audio tokens, 128 text tokens.

What is measured where:

Both models stay alive during the run (the resident one on the device), so on CUDA the offloaded peak is measured
as a difference from the memory allocated when its forward starts.

* **CUDA** (``--device cuda``): ``torch.cuda.max_memory_allocated`` during one forward, and
  ``torch.cuda.memory_allocated`` before it (the resident weights + inputs); "peak weights" is the peak minus what
  the same forward's activations take on the resident model (peak − resident weights there), so both rows count
  weights the same way.
* **CPU** (default): there is no separate device memory, so the offloaded row counts the bytes of block weights that
  are *not* their CPU master copies at the moment each block starts (every load is a real copy into fresh memory;
  the scan is independent of the offloader's own counters, which are printed beside it), plus the resident non-block
  weights; the resident row is all weights by construction. Time on CPU measures the copy overhead only (no PCIe).

    python benchmarks/offload.py [--device cpu|cuda] [--layers 8] [--video-tokens 1024] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from dataclasses import replace

import torch

from rs_ltxv.ltx import tokens as T
from rs_ltxv.ltx.offload import BlockOffload
from rs_ltxv.ltx.random_weights import random_init
from rs_ltxv.ltx.tiny import tiny_config
from rs_ltxv.ltx.transformer import LTXAVTransformer, StreamInput

MIB = 2**20


def build(args: argparse.Namespace) -> LTXAVTransformer:
    """An LTX-2.3-layout transformer with random weights on the CPU at the widths of ``args``."""
    cfg = replace(tiny_config("2.3", layers=args.layers), num_attention_heads=args.heads, attention_head_dim=128,
                  cross_attention_dim=args.heads * 128, audio_num_attention_heads=args.heads,
                  audio_attention_head_dim=64, audio_cross_attention_dim=args.heads * 64)
    return random_init(LTXAVTransformer(cfg), 0).eval()


def inputs(model: LTXAVTransformer, args: argparse.Namespace, device: torch.device, dtype: torch.dtype):
    """Video and audio :class:`StreamInput` on ``device``: latents ``(1, T, C)``, positions, σ 0.5, context."""
    cfg, g = model.config, torch.Generator().manual_seed(1)
    v_ctx, a_ctx = model.context_dim
    side = max(1, round((args.video_tokens / 4) ** 0.5))
    frames, h, w = 4, side, args.video_tokens // (4 * side)
    n_v, n_a = frames * h * w, args.audio_tokens

    def put(t: torch.Tensor) -> torch.Tensor:
        return t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)

    video = StreamInput(put(torch.randn(1, n_v, cfg.in_channels, generator=g)), put(torch.tensor([0.5])),
                        put(torch.full((1, n_v), 0.5)), put(T.video_positions(1, frames, h, w, 24.0)),
                        put(torch.randn(1, 128, v_ctx, generator=g)))
    audio = StreamInput(put(torch.randn(1, n_a, cfg.audio_in_channels, generator=g)), put(torch.tensor([0.5])),
                        put(torch.full((1, n_a), 0.5)), put(T.audio_positions(1, n_a)),
                        put(torch.randn(1, 128, a_ctx, generator=g)))
    return video, audio


def timed(fns: list, repeats: int, device: torch.device) -> list[float]:
    """Median seconds of ``repeats`` calls of each function, run alternately (A, B, B, A, …) so drift and other
    load on the machine hit both alike; the first measurement above is each one's warm-up."""
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            fns[i]()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def weight_bytes(module: torch.nn.Module) -> int:
    return sum(p.nbytes for p in module.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8, help="video and audio heads (video head dim 128, audio 64)")
    ap.add_argument("--video-tokens", type=int, default=1024)
    ap.add_argument("--audio-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cuda = device.type == "cuda"
    torch.set_grad_enabled(False)

    base = build(args).to(dtype)
    total = weight_bytes(base)
    block = weight_bytes(base.transformer_blocks[0])
    video, audio = inputs(base, args, device, dtype)

    # resident
    resident = copy.deepcopy(base).to(device)
    if cuda:
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    want = resident(video, audio)
    res_peak_weights = total
    activations = 0
    if cuda:
        activations = torch.cuda.max_memory_allocated(device) - start

    # offloaded
    model = copy.deepcopy(base)
    off = BlockOffload.attach(model, device)
    masters = {id(s): s for e in off._blocks for s in e.slots}
    scan_peak = [0]

    def scan(_block, _args) -> None:  # independent of the offloader's counters: device copies = not the masters
        live = sum(s.current().nbytes for s in masters.values() if s.current().data_ptr() != s.master.data_ptr())
        scan_peak[0] = max(scan_peak[0], live)

    hooks = [b.register_forward_pre_hook(scan) for b in model.transformer_blocks]  # run after the offloader's load
    off.reset_peak()
    if cuda:
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    got = model(video, audio)
    stats = off.stats()
    if cuda:
        off_peak_weights = torch.cuda.max_memory_allocated(device) - start - activations + stats.resident_bytes
    else:
        off_peak_weights = scan_peak[0] + stats.resident_bytes
    for h in hooks:
        h.remove()
    t_res, t_off = timed([lambda: resident(video, audio), lambda: model(video, audio)], args.repeats, device)
    equal = torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])

    print(f"device {device} ({dtype}), {args.layers} blocks, video {video.latent.shape[1]} / audio "
          f"{audio.latent.shape[1]} tokens; all weights {total / MIB:.1f} MiB, one block {block / MIB:.1f} MiB, "
          f"non-block {stats.resident_bytes / MIB:.1f} MiB")
    print(f"{'':<12}{'peak weights on device':>24}{'in blocks':>12}{'time / forward':>16}{'ratio':>8}")
    print(f"{'resident':<12}{res_peak_weights / MIB:>20.1f} MiB{total / block:>12.2f}{t_res:>14.3f} s{1.0:>8.2f}")
    blocks_held = (off_peak_weights - stats.resident_bytes) / block
    print(f"{'offload':<12}{off_peak_weights / MIB:>20.1f} MiB{blocks_held:>12.2f}{t_off:>14.3f} s"
          f"{t_off / t_res:>8.2f}")
    print(f"offloader's own count: peak {stats.peak_block_bytes / block:.2f} blocks, {stats.loads} loads; "
          f"goal ≤ 2 blocks: {'met' if blocks_held <= 2 + 1e-9 else 'NOT met'}; outputs equal: {equal}")


if __name__ == "__main__":
    main()
