"""Resident memory and per-forward dequantisation cost of GGUF models vs the bf16 safetensors model, same weights.

A tiny-but-not-trivial LTX-2.3 transformer (default 4 layers, video 8×64, audio 8×32, ~32 M parameters) is written
as a bf16 .safetensors and as GGUF Q8_0 and Q4_K (Linear weights whose rows fit the blocks; Q4_K files fall back to
Q8_0 for rows that are not multiples of 256, as llama.cpp's mixes do; other tensors F32, as in the released GGUFs).
Each is loaded with ``load_transformer(path, dtype=torch.bfloat16)``:

* **model bytes**: parameter + buffer bytes of the loaded module (quantised weights counted as their raw bytes);
* **RSS**: resident-set growth of a fresh Python process (``/proc/self/status`` VmRSS) after loading and after one
  forward — GGUF tensors on CPU are views of the memory map, so their pages become resident (file-backed, shared
  with the page cache) as a forward touches them;
* **RSS peak**: growth of the high-water mark (VmHWM) over the same baseline — includes the forward's activations
  and, for GGUF, the dequantised weight of the layer being computed;
* **time**: forward time of each GGUF model / the safetensors model loaded in the same compute dtype
  (``--time-dtype``, default f32: bf16 matmuls on this CPU are pathologically slow), runs interleaved, median of
  ``--repeats``; the ratio is the per-forward dequantisation overhead at that token count.

    .venv/bin/python benchmarks/gguf_memory.py [--layers 4] [--tokens 96] [--repeats 5] [--threads 1] [--dtype bf16|f32]
                                               [--time-dtype f32|bf16]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from gguf import GGMLQuantizationType as Q
from safetensors.torch import save_file

from rs_ltxv.gguf_loader import GGUFLinear
from rs_ltxv.gguf_loader.writer import write_gguf
from rs_ltxv.ltx import tokens as T
from rs_ltxv.ltx.config import TransformerConfig
from rs_ltxv.ltx.loading import load_transformer
from rs_ltxv.ltx.tiny import random_init
from rs_ltxv.ltx.transformer import LTXAVTransformer, StreamInput

DIFF = "model.diffusion_model."
DTYPES = {"bf16": torch.bfloat16, "f32": torch.float32}


def bench_config(layers: int) -> TransformerConfig:
    return TransformerConfig(
        num_layers=layers, num_attention_heads=8, attention_head_dim=64, cross_attention_dim=512,
        audio_num_attention_heads=8, audio_attention_head_dim=32, audio_cross_attention_dim=256, in_channels=128,
        out_channels=128, audio_in_channels=128, audio_out_channels=128, caption_channels=512,
        apply_gated_attention=True, cross_attention_adaln=True, caption_proj_before_connector=True)


def qtype_for(kind: str):
    def choose(name: str, t: torch.Tensor) -> Q:
        if not (name.endswith(".weight") and t.ndim == 2 and t.shape[1] % 32 == 0):
            return Q.F32
        return Q.Q4_K if kind == "Q4_K" and t.shape[1] % 256 == 0 else Q.Q8_0
    return choose


def write_files(cfg: TransformerConfig, folder: Path) -> dict[str, Path]:
    with torch.device("meta"):
        model = LTXAVTransformer(cfg)
    random_init(model, seed=0, std=0.03)
    sd = {DIFF + k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"config": json.dumps({"transformer": cfg.to_dict()})}
    files = {"safetensors bf16": folder / "model.safetensors"}
    save_file({k: v.to(torch.bfloat16) for k, v in sd.items()}, str(files["safetensors bf16"]), metadata=meta)
    for kind in ("Q8_0", "Q4_K"):
        files[f"GGUF {kind}"] = Path(write_gguf(folder / f"model-{kind}.gguf", sd, qtype_for(kind), metadata=meta))
    return files


def model_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def inputs(cfg: TransformerConfig, tokens: int, dtype: torch.dtype) -> tuple[StreamInput, StreamInput]:
    g = torch.Generator().manual_seed(0)
    h = max(1, tokens // 8)
    v_tokens, a_tokens = 2 * h * 4, tokens // 2
    sigma = torch.tensor([0.5])
    video = StreamInput(torch.randn(1, v_tokens, cfg.in_channels, generator=g).to(dtype), sigma,
                        torch.full((1, v_tokens), 0.5), T.video_positions(1, 2, h, 4, 24.0),
                        torch.randn(1, 16, cfg.inner_dim, generator=g).to(dtype))
    audio = StreamInput(torch.randn(1, a_tokens, cfg.audio_in_channels, generator=g).to(dtype), sigma,
                        torch.full((1, a_tokens), 0.5), T.audio_positions(1, a_tokens),
                        torch.randn(1, 16, cfg.audio_inner_dim, generator=g).to(dtype))
    return video, audio


def rss_kib(field: str = "VmRSS") -> int:
    """Resident set (``VmRSS``) or its high-water mark (``VmHWM``) of this process, KiB."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


def rss_child(path: str, layers: int, tokens: int, dtype: str) -> None:
    """Run in a fresh process: print JSON with the RSS growth after loading and after one forward."""
    cfg = bench_config(layers)
    args = inputs(cfg, tokens, DTYPES[dtype])
    gc.collect()
    base = rss_kib()
    model = load_transformer(path, dtype=DTYPES[dtype])
    gc.collect()
    loaded = rss_kib()
    with torch.no_grad():
        model(*args)
    del args
    gc.collect()
    peak = rss_kib("VmHWM")
    print(json.dumps({"load_mib": (loaded - base) / 1024, "after_forward_mib": (rss_kib() - base) / 1024,
                      "peak_mib": (peak - base) / 1024}))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--tokens", type=int, default=96, help="≈ video tokens (audio gets half)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bf16", help="load dtype for the memory table")
    p.add_argument("--time-dtype", choices=sorted(DTYPES), default="f32",
                   help="compute dtype of the timing (CPU bf16 matmuls are far slower than f32 here)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: on the shared 2-core dev machine, 2 threads thrash and time 5-20× worse)")
    p.add_argument("--rss-of", help=argparse.SUPPRESS)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.rss_of:
        return rss_child(a.rss_of, a.layers, a.tokens, a.dtype)
    cfg = bench_config(a.layers)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_files(cfg, Path(tmp))
        models = {name: load_transformer(path, dtype=DTYPES[a.dtype]) for name, path in files.items()}
        n_params = sum(t.numel() for t in models["safetensors bf16"].parameters())
        print(f"model: LTX-2.3 layout, {a.layers} layers, {n_params / 1e6:.1f} M parameters; loaded as {a.dtype}; "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        print(f"{'format':<18} {'file MiB':>9} {'model MiB':>10} {'vs bf16':>8} {'RSS load MiB':>13} "
              f"{'RSS +fwd MiB':>13} {'RSS peak MiB':>13} {'GGUFLinear':>10}")
        base_bytes = model_bytes(models["safetensors bf16"])
        for name, path in files.items():
            rss = json.loads(subprocess.run(
                [sys.executable, __file__, "--rss-of", str(path), "--layers", str(a.layers), "--tokens",
                 str(a.tokens), "--dtype", a.dtype], check=True, capture_output=True, text=True).stdout)
            m = models[name]
            nq = sum(isinstance(x, GGUFLinear) for x in m.modules())
            print(f"{name:<18} {path.stat().st_size / 2**20:>9.2f} {model_bytes(m) / 2**20:>10.2f} "
                  f"{model_bytes(m) / base_bytes:>8.3f} {rss['load_mib']:>13.1f} {rss['after_forward_mib']:>13.1f} "
                  f"{rss['peak_mib']:>13.1f} {nq:>10}")
        dtype = DTYPES[a.time_dtype]
        models = {name: load_transformer(path, dtype=dtype) for name, path in files.items()}
        args = inputs(cfg, a.tokens, dtype)
        times: dict[str, list[float]] = {name: [] for name in models}
        with torch.no_grad():
            for m in models.values():
                m(*args)  # warm-up
            for _ in range(a.repeats):
                for name, m in models.items():
                    start = time.perf_counter()
                    m(*args)
                    times[name].append(time.perf_counter() - start)
        ref = statistics.median(times["safetensors bf16"])
        print(f"forward in {a.time_dtype} ({args[0].latent.shape[1]} video + {args[1].latent.shape[1]} audio tokens), "
              f"median of "
              f"{a.repeats}, interleaved:")
        for name, ts in times.items():
            print(f"  {name:<18} {statistics.median(ts) * 1e3:8.1f} ms   ratio vs safetensors "
                  f"{statistics.median(ts) / ref:5.2f}")
        with torch.no_grad():
            out = {name: m(*args) for name, m in models.items()}
        for name in files:
            if name.startswith("GGUF"):
                rel = [((o.float() - r.float()).norm() / r.float().norm()).item()
                       for o, r in zip(out[name], out["safetensors bf16"], strict=True)]
                print(f"  {name} vs bf16 output, relative L2: video {rel[0]:.2e}, audio {rel[1]:.2e}")


if __name__ == "__main__":
    main()
