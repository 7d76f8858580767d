"""Forward time, peak memory and accuracy on CUDA in bfloat16: our transformer vs ltx-core 1.0.0 (same weights),
our attention backends (sdpa vs sage) and feed-forward chunking (ffn_chunks=4 vs 1).

Default size: LTX-2.3 layout at the released widths (video 32 heads × 128 = 4096, audio 32 × 64 = 2048, latent
channels 128), ``--layers`` blocks (the released model has 48; per-block cost is what matters here), batch 1,
tokens of a 768×512, 121-frame clip: video 16 × 16 × 24 = 6144 latent tokens, 126 audio tokens (5.04 s at 25 per
second), 1024 text-context tokens per stream.

Weights: ltx-core's own model (``LTXModelConfigurator``) is built on the GPU and initialised like a trained network
with the distributions of ``reference/builders.realistic_init`` (drawn on the GPU: a CPU draw of ~2 B numbers takes
minutes), rounded to bfloat16 and written as an official single-file checkpoint; ours is loaded from that file with our
loader. The float32 ground truth is ltx-core's model with the *same* (bf16-rounded) weights run in float32, so the
bf16 errors below are pure arithmetic-precision errors.

Runs alternate (A, B, B, A, …) so clock/thermal drift hits both sides; each time is the median of ``--repeats``
forwards timed with CUDA events after two warm-ups. Peak memory = ``torch.cuda.max_memory_allocated`` during one
forward minus what was allocated when it started (weights and inputs are not counted).

    python benchmarks/transformer_gpu.py [--layers 4] [--frames 16] [--height 16] [--width 24] [--audio 126]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from rs_ltxv.ltx.loading import load_transformer
from rs_ltxv.ltx.transformer import RunOptions, StreamInput

from reference import ltx_core_ref as R

Outputs = tuple[torch.Tensor, torch.Tensor]


def _to(d: dict, device: torch.device, dtype: torch.dtype) -> dict:
    """Modality dict on ``device``: latent and context in ``dtype``; sigma, timesteps and positions stay float32."""
    out = {}
    for k, v in d.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device)
            if k in ("latent", "context"):
                v = v.to(dtype)
        out[k] = v
    return out


@torch.no_grad()
def init_like_trained(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """``realistic_init``'s distributions, drawn on the module's device: Linear weights ~ N(0, 1/fan_in), biases
    ~ N(0, 0.02²), RMSNorm weights ~ 1 + N(0, 0.1²); every other parameter (AdaLN tables) ~ N(0, 0.05²)."""
    gen = torch.Generator(device=next(module.parameters()).device).manual_seed(seed)
    for mod in module.modules():
        for name, p in mod.named_parameters(recurse=False):
            p.normal_(generator=gen)
            if isinstance(mod, torch.nn.Linear):
                p.mul_(mod.in_features**-0.5 if name == "weight" else 0.02)
            elif isinstance(mod, torch.nn.RMSNorm):
                p.mul_(0.1).add_(1.0)
            else:
                p.mul_(0.05)
    return module.eval().requires_grad_(False)


def gpu_time(fn: Callable[[], object]) -> float:
    """Seconds of one call, from CUDA events around it (synchronised)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3


def peak_cuda_bytes(fn: Callable[[], object]) -> int:
    """``max_memory_allocated`` while ``fn`` runs minus what was allocated before (the outputs are freed after)."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del out
    return peak


def side_by_side(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median CUDA-event time of each function, calls alternating (A B, B A, …) after two warm-ups each."""
    names = list(fns)
    for _ in range(2):
        for n in names:
            fns[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(repeats):
        for n in names if i % 2 == 0 else names[::-1]:
            times[n].append(gpu_time(fns[n]))
    return {n: statistics.median(t) for n, t in times.items()}


def rel(a: Outputs, b: Outputs) -> tuple[float, float]:
    """max|a − b| / max|b| per stream (video, audio), in float32. One bf16 step at the largest value (4 ≤ |x| < 8)
    is 2⁻⁵, so on outputs of max ≈ 5.6 a single rounding flip there already reads ≈ 5.6e-3."""
    return tuple((x.float() - y.float()).abs().max().item() / y.float().abs().max().item()
                 for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def mean_rel(a: Outputs, b: Outputs) -> tuple[float, float]:
    """mean|a − b| / mean|b| per stream (video, audio), in float32."""
    return tuple((x.float() - y.float()).abs().mean().item() / y.float().abs().mean().item()
                 for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="2.3", choices=["2.0", "2.3"])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--audio-heads", type=int, default=32)
    ap.add_argument("--audio-head-dim", type=int, default=64)
    ap.add_argument("--frames", type=int, default=16, help="latent frames")
    ap.add_argument("--height", type=int, default=16, help="latent rows")
    ap.add_argument("--width", type=int, default=24, help="latent columns")
    ap.add_argument("--audio", type=int, default=126, help="audio latent frames")
    ap.add_argument("--text", type=int, default=1024, help="text-context tokens")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("transformer_gpu.py needs a CUDA device (see transformer_cpu.py for the CPU benchmark)")
    dev, bf16 = torch.device("cuda"), torch.bfloat16
    torch.backends.cuda.matmul.allow_tf32 = False  # the float32 ground truth must be float32
    torch.backends.cudnn.allow_tf32 = False

    t0 = time.perf_counter()
    vdim = args.heads * args.head_dim
    cfg = R.tiny_config(args.variant, video_heads=args.heads, video_head_dim=args.head_dim,
                        audio_heads=args.audio_heads, audio_head_dim=args.audio_head_dim, num_layers=args.layers,
                        in_channels=128, audio_in_channels=128, caption_channels=vdim if args.variant == "2.0" else 256,
                        connector_heads=args.heads, connector_layers=1, num_registers=128)
    with torch.device("meta"):
        model = R.LTXModelConfigurator.from_config(cfg)  # ltx-core's own builder
    ref16 = init_like_trained(model.to_empty(device=dev), seed=1).to(bf16)  # both sides get exactly these weights
    ref = R.RefModels(args.variant, cfg, ref16, embeddings_processor=None)  # type: ignore[arg-type]  (no text)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide.safetensors"
        R.write_checkpoint(ref, path, include_text=False)
        ours = load_transformer(path, dtype=bf16, device=dev)
    ref32 = copy.deepcopy(ref16).float()
    setup_s = time.perf_counter() - t0

    grid = (args.frames, args.height, args.width)
    video = R.random_modality(ref, "video", batch=1, tokens_or_grid=grid, text_len=args.text, sigma=0.7)
    audio = R.random_modality(ref, "audio", batch=1, tokens_or_grid=args.audio, text_len=args.text, sigma=0.7,
                              seed=1)
    v16, a16 = _to(video, dev, bf16), _to(audio, dev, bf16)
    v32, a32 = _to(video, dev, torch.float32), _to(audio, dev, torch.float32)
    n_params = sum(p.numel() for p in ours.parameters())
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}; setup {setup_s:.0f} s")
    print(f"config: LTX-{args.variant} layout, {args.layers} layers, video {args.heads}×{args.head_dim}, audio "
          f"{args.audio_heads}×{args.audio_head_dim}, {n_params / 1e9:.2f} B params; tokens: video "
          f"{grid[0] * grid[1] * grid[2]} ({grid}), audio {args.audio}, text {args.text}; batch 1, bfloat16")

    rref = lambda m, v, a: lambda: R._run(m, v, a, None)  # noqa: E731  (official LTXModel forward, no_grad)

    def rours(v: dict, a: dict, **opts) -> Callable[[], Outputs]:
        options = RunOptions(**opts)

        def run() -> Outputs:
            with torch.no_grad():
                return ours(StreamInput(**v), StreamInput(**a), options=options)

        return run

    truth = rref(ref32, v32, a32)()
    print(f"float32 ground truth: max|video| {truth[0].abs().max():.2f}, max|audio| {truth[1].abs().max():.2f}")
    del ref32
    torch.cuda.empty_cache()

    def report(title: str, a_name: str, b_name: str, fns: dict[str, Callable[[], Outputs]]) -> dict[str, Outputs]:
        outs = {n: f() for n, f in fns.items()}
        times = side_by_side(fns, args.repeats)
        mems = {n: peak_cuda_bytes(f) for n, f in fns.items()}
        ta, tb, ma, mb = times[a_name], times[b_name], mems[a_name], mems[b_name]
        dv, da = rel(outs[a_name], outs[b_name])
        print(f"\n== {title}")
        print(f"forward time  {b_name:>10} {tb * 1e3:8.2f} ms   {a_name:>10} {ta * 1e3:8.2f} ms   "
              f"ratio {a_name}/{b_name} {ta / tb:.3f}")
        print(f"peak memory   {b_name:>10} {mb / 2**20:8.1f} MiB  {a_name:>10} {ma / 2**20:8.1f} MiB  "
              f"ratio {a_name}/{b_name} {ma / mb:.3f}")
        mv, ma_ = mean_rel(outs[a_name], outs[b_name])
        print(f"{a_name} vs {b_name}: max|Δ|/max|{b_name}| video {dv:.2e}, audio {da:.2e}; "
              f"mean|Δ|/mean|{b_name}| video {mv:.2e}, audio {ma_:.2e}; bit-identical: "
              f"{all(torch.equal(x, y) for x, y in zip(outs[a_name], outs[b_name], strict=True))}")
        for n in fns:
            (ev, ea), (mv, ma_) = rel(outs[n], truth), mean_rel(outs[n], truth)
            print(f"{n} (bf16) vs float32 ltx-core: max rel video {ev:.2e}, audio {ea:.2e}; "
                  f"mean rel video {mv:.2e}, audio {ma_:.2e}")
        return outs

    report("ours vs ltx-core 1.0.0 (both sdpa, same bf16 weights)", "ours", "ltx-core",
           {"ltx-core": rref(ref16, v16, a16), "ours": rours(v16, a16)})
    del ref16
    torch.cuda.empty_cache()

    if importlib.util.find_spec("sageattention") is not None:
        report("attention backend: sage vs sdpa (ours)", "sage", "sdpa",
               {"sdpa": rours(v16, a16), "sage": rours(v16, a16, attention_mode="sage")})
    else:
        print("\n== attention backend: sage vs sdpa — skipped, sageattention is not installed")
    from rs_ltxv.ops import resolve_backend

    print(f"(auto resolves to {resolve_backend('auto', dev)!r} here)")
    report("feed-forward chunking: ffn_chunks=4 vs 1 (ours, sdpa)", "ff4", "ff1",
           {"ff1": rours(v16, a16), "ff4": rours(v16, a16, ffn_chunks=4)})


if __name__ == "__main__":
    main()
