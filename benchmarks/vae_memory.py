"""Peak memory of untiled vs tiled video VAE decode as the video grows (tiny LTX-2.3-layout VAE, float32, CPU).

Peak = high-water mark of live CPU tensor bytes during the decode above what was live when it started, from torch's
memory timeline (allocation-level). The tiled decode streams into a preallocated output (allocated before the
measurement, so both columns count working memory only; the untiled decode's own output is counted because it is
part of its working set). The tiled peak should stay flat as frames grow; the untiled one grows linearly.
Also printed: the estimate used by ``auto_tiling`` for one tile, and the max |Δ| tiled vs untiled.

    scripts/dev.sh python benchmarks/vae_memory.py [--layout 2.3] [--frames 5 9 17 33] [--size 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import peak_bytes

from rs_ltxv.ltx.video_vae import TilingConfig, VideoDecoder, VideoVAEConfig, decode_tiled, estimate_decode_bytes

from reference import ltx_core_vae_ref as R


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layout", default="2.3", choices=["2.0", "2.3"])
    ap.add_argument("--frames", type=int, nargs="+", default=[5, 9, 17, 33], help="latent frames")
    ap.add_argument("--size", type=int, default=4, help="latent height = width")
    ap.add_argument("--tile-frames", type=int, default=32, help="temporal tile in pixel frames")
    ap.add_argument("--overlap-frames", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    raw = R.vae_config(args.layout)
    enc, dec = R.build_reference(raw, seed=0)
    del enc
    cfg = VideoVAEConfig.from_dict(raw)
    ours = VideoDecoder(cfg).eval().requires_grad_(False)
    ours.load_state_dict(dec.state_dict())
    tiling = TilingConfig(tile_pixels=None, tile_frames=args.tile_frames, overlap_frames=args.overlap_frames)
    tile_lat = args.tile_frames // 8
    est = estimate_decode_bytes(cfg, tile_lat, args.size, args.size)
    print(f"tiny LTX-{args.layout} VAE decoder, latent {cfg.latent_channels}×F'×{args.size}×{args.size}, float32, "
          f"{args.threads} threads; temporal tiles {args.tile_frames} frames, overlap {args.overlap_frames}")
    print(f"auto_tiling estimate for one {tile_lat}-latent-frame tile: {est / 2**20:.1f} MiB")
    print(f"{'latent F':>8} {'frames':>6} {'output MiB':>10} {'untiled MiB':>11} {'tiled MiB':>9} "
          f"{'tiled/untiled':>13} {'max|Δ|':>8}")
    for frames in args.frames:
        latent = R.random_latent(cfg.latent_channels, frames, args.size, args.size, seed=frames)
        out = torch.empty(1, 3, 1 + 8 * (frames - 1), 32 * args.size, 32 * args.size)
        with torch.inference_mode():
            full = ours(latent)
            m_full = peak_bytes(lambda latent=latent: ours(latent))
            m_tiled = peak_bytes(lambda latent=latent, out=out: decode_tiled(ours, latent, tiling, out=out))
            delta = (out - full).abs().max().item()
        print(f"{frames:>8} {out.shape[2]:>6} {out.numel() * 4 / 2**20:>10.1f} {m_full / 2**20:>11.1f} "
              f"{m_tiled / 2**20:>9.1f} {m_tiled / m_full:>13.3f} {delta:>8.3f}")


if __name__ == "__main__":
    main()
