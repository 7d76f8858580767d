"""Quantised safetensors files (FP8 / INT8 / NVFP4, kept quantised as ``QuantLinear``) vs the same weights in bf16:
resident bytes, forward time and output error, side by side in one run on the CPU.

A small LTX-2.3 transformer (default 2 layers, video 8×64, audio 8×32, ~20 M parameters) is random-initialised,
written as float32 ``.safetensors`` and, with ``ltx.quant.writers.quantise_state_dict``, in every layout the loader
reads (official FP8 per tensor / per row / e5m2, ComfyUI ``scaled_fp8``, ``comfy_quant`` float8 / int8 / int8 +
ConvRot / nvfp4). Each file is loaded with ``load_transformer(path, dtype=<compute dtype>)`` and measured:

* **Linear bytes / bf16**: bytes of the Linear weights as loaded (a ``QuantLinear`` counts its stored tensors:
  packed weight + scales) / the same weights in bf16;
* **model bytes / bf16**: all parameters and buffers / the bf16 model's;
* **time / bf16**: forward time / the bf16 file's model in the same compute dtype (``--time-dtype``, default f32:
  bf16 matmuls on these CPUs are very slow), runs interleaved, median of ``--repeats``: the per-forward
  dequantisation cost at ``--tokens`` video tokens;
* **error**: relative L2 error of the video output vs the float32 model (the bf16 row shows bf16 rounding alone).

    .venv/bin/python benchmarks/quantised_memory.py [--layers 2] [--tokens 96] [--repeats 5] [--threads 2]
                                                    [--time-dtype f32|bf16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from gguf_memory import DIFF, DTYPES, bench_config  # the same model and constants as the GGUF benchmark
from safetensors.torch import save_file

from rs_ltxv.ltx import tokens as T
from rs_ltxv.ltx.config import TransformerConfig
from rs_ltxv.ltx.loading import load_transformer
from rs_ltxv.ltx.quant import QuantLinear
from rs_ltxv.ltx.quant.writers import LAYOUTS, quantise_state_dict
from rs_ltxv.ltx.tiny import random_init
from rs_ltxv.ltx.transformer import LTXAVTransformer, StreamInput


def inputs(cfg: TransformerConfig, tokens: int, dtype: torch.dtype) -> tuple[StreamInput, StreamInput]:
    g = torch.Generator().manual_seed(1)
    frames, h, w = max(1, tokens // 48), 6, 8
    n = frames * h * w
    video = StreamInput(torch.randn(1, n, cfg.in_channels, generator=g).to(dtype), torch.tensor([0.5]),
                        torch.full((1, n), 0.5), T.video_positions(1, frames, h, w, 24.0),
                        torch.randn(1, 16, cfg.inner_dim, generator=g).to(dtype))
    audio = StreamInput(torch.randn(1, 8, cfg.audio_in_channels, generator=g).to(dtype), torch.tensor([0.5]),
                        torch.full((1, 8), 0.5), T.audio_positions(1, 8),
                        torch.randn(1, 16, cfg.audio_inner_dim, generator=g).to(dtype))
    return video, audio


def model_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def linear_bytes(model: torch.nn.Module) -> int:
    total = 0
    for m in model.modules():
        if isinstance(m, QuantLinear):
            total += m.resident_bytes
        elif isinstance(m, torch.nn.Linear):
            total += m.weight.numel() * m.weight.element_size()
    return total


def forward(model: LTXAVTransformer, args: tuple[StreamInput, StreamInput]) -> tuple[float, torch.Tensor]:
    with torch.no_grad():
        start = time.perf_counter()
        out = model(*args)[0]
        return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--time-dtype", choices=sorted(DTYPES), default="f32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = bench_config(args.layers)
    with torch.device("meta"):
        model = LTXAVTransformer(cfg)
    state = {DIFF + k: v.contiguous() for k, v in random_init(model, 0).state_dict().items()}
    compute = DTYPES[args.time_dtype]
    with tempfile.TemporaryDirectory() as tmp:
        files = {"bf16": Path(tmp) / "bf16.safetensors"}
        save_file({k: v.to(torch.bfloat16) for k, v in state.items()}, str(files["bf16"]))
        save_file(state, str(Path(tmp) / "f32.safetensors"))
        for layout in LAYOUTS:
            files[layout] = Path(tmp) / f"{layout}.safetensors"
            save_file(quantise_state_dict(state, layout), str(files[layout]))
        reference = load_transformer(Path(tmp) / "f32.safetensors", dtype=torch.float32)
        _, want = forward(reference, inputs(cfg, args.tokens, torch.float32))
        models = {name: load_transformer(path, dtype=compute) for name, path in files.items()}
        bf16_model = load_transformer(files["bf16"], dtype=torch.bfloat16)
        base_linear, base_model = linear_bytes(bf16_model), model_bytes(bf16_model)
        x = inputs(cfg, args.tokens, compute)
        times: dict[str, list[float]] = {name: [] for name in models}
        outs: dict[str, torch.Tensor] = {}
        for m in models.values():
            forward(m, x)  # warm-up
        for _ in range(args.repeats):
            for name, m in models.items():
                t, outs[name] = forward(m, x)
                times[name].append(t)
        base_time = statistics.median(times["bf16"])
        print(f"{sum(v.numel() for v in state.values()) / 1e6:.1f} M parameters, {args.layers} layers, "
              f"{x[0].latent.shape[1]} video tokens, compute {args.time_dtype}, {args.threads} threads, median of "
              f"{args.repeats}")
        print(f"{'file':<22} {'Linear bytes/bf16':>18} {'model bytes/bf16':>17} {'time/bf16':>10} {'error':>8}")
        for name, m in models.items():
            ref_model = bf16_model if name == "bf16" else m
            err = ((outs[name].float() - want).norm() / want.norm()).item()
            print(f"{name:<22} {linear_bytes(ref_model) / base_linear:>18.3f} "
                  f"{model_bytes(ref_model) / base_model:>17.3f} {statistics.median(times[name]) / base_time:>10.2f} "
                  f"{err:>8.4f}")


if __name__ == "__main__":
    main()
