"""Forward time and peak memory: our transformer vs ltx-core 1.0.0, same weights, float32, CPU, 2 threads.

Runs alternate (ref, ours, ours, ref, …) so drift in machine load hits both; the time is the median of the runs.
Peak memory is the high-water mark of live tensor bytes during one forward above what was live when it started,
from torch's memory timeline (allocation-level, the same measure for both; weights and inputs are not counted).

    scripts/dev.sh python benchmarks/transformer_cpu.py [--layers 4] [--frames 5] [--height 16] [--width 24]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import peak_bytes

from rs_ltxv.ltx.loading import load_transformer
from rs_ltxv.ltx.transformer import StreamInput

from reference import ltx_core_ref as R
from reference.builders import realistic_init


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="2.3", choices=["2.0", "2.3"])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--frames", type=int, default=5, help="latent frames")
    ap.add_argument("--height", type=int, default=16, help="latent rows")
    ap.add_argument("--width", type=int, default=24, help="latent columns")
    ap.add_argument("--audio", type=int, default=126, help="audio latent frames")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cfg = R.tiny_config(args.variant, video_heads=args.heads, video_head_dim=64, audio_heads=args.heads,
                        audio_head_dim=32, num_layers=args.layers, in_channels=128, audio_in_channels=128,
                        caption_channels=512, connector_heads=4)
    ref = R.build_reference(args.variant, cfg=cfg, seed=0)
    realistic_init(ref.transformer, 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mid.safetensors"
        R.write_checkpoint(ref, path)
        ours = load_transformer(path, dtype=torch.float32)
    grid = (args.frames, args.height, args.width)
    video = R.random_modality(ref, "video", batch=1, tokens_or_grid=grid, text_len=128, sigma=0.7)
    audio = R.random_modality(ref, "audio", batch=1, tokens_or_grid=args.audio, text_len=128, sigma=0.7, seed=1)
    n_params = sum(p.numel() for p in ours.parameters())
    print(f"config: LTX-{args.variant} layout, {args.layers} layers, video {args.heads}×64, audio {args.heads}×32, "
          f"{n_params / 1e6:.1f} M params; tokens: video {grid[0] * grid[1] * grid[2]} ({grid}), audio {args.audio}, "
          f"text 128; float32, {args.threads} threads")

    def run_ref():
        return R.run_transformer(ref, video=video, audio=audio)

    def run_ours():
        with torch.no_grad():
            return ours(StreamInput(**video), StreamInput(**audio))

    (rv, ra), (ov, oa) = run_ref(), run_ours()  # warm-up
    delta = max((ov - rv).abs().max().item(), (oa - ra).abs().max().item())
    times: dict[str, list[float]] = {"ref": [], "ours": []}
    for i in range(args.repeats):
        order = [("ref", run_ref), ("ours", run_ours)]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    t_ref, t_ours = statistics.median(times["ref"]), statistics.median(times["ours"])
    m_ref, m_ours = peak_bytes(run_ref), peak_bytes(run_ours)
    scale = max(rv.abs().max().item(), ra.abs().max().item())
    print(f"max |Δ| ours vs ltx-core: {delta:.2e} (max |ref| {scale:.2f})")
    print(f"forward time  ltx-core {t_ref * 1e3:8.1f} ms   ours {t_ours * 1e3:8.1f} ms   "
          f"ratio ours/ref {t_ours / t_ref:.3f}")
    print(f"peak memory   ltx-core {m_ref / 2**20:8.1f} MiB  ours {m_ours / 2**20:8.1f} MiB  "
          f"ratio ours/ref {m_ours / m_ref:.3f}")


if __name__ == "__main__":
    main()
