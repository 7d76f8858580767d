"""Encoding one prompt: ours (Gemma on the real tokens only, then features + connectors) vs LTX's reference path
(``transformers`` Gemma3TextModel on the prompt left-padded to 1024 tokens + ltx-core's EmbeddingsProcessor).

Same random weights on both sides: a Gemma-3 of the 270M shape (or ``--layers``/``--hidden`` variants) and tiny
LTX connectors with 128 registers at the Gemma width. Prints time and peak memory (medians of ``--repeats``) of the
encoding itself (weights excluded; CPU: growth of the process's peak RSS, reset before each run through
/proc/self/clear_refs; CUDA: ``max_memory_allocated``), side by side, as ratios reference / ours, and the largest
difference between the two results.

    python benchmarks/text_encode.py [--variant 2.3] [--device cpu] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from rs_ltxv.ltx.loading import load_text_connectors, open_checkpoint
from rs_ltxv.ltx.loading.gemma import build_gemma
from rs_ltxv.ltx.text.encoder import PromptEncoder
from rs_ltxv.ltx.text.gemma_config import GemmaConfig
from rs_ltxv.ltx.text.tokenizer import GemmaTokenizer

from reference import gemma_ref as G
from reference import ltx_core_ref as R

PROMPT = ("A golden retriever runs along a beach at sunset while waves roll in. The camera tracks the dog from a low "
          "angle, sand flies from its paws, warm backlight, shallow depth of field, cinematic, 35mm film grain. "
          "Seagulls cry in the distance and the surf roars.")


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class PeakMemory:
    """Peak extra memory (MiB) of the code run inside ``with`` (CPU: RSS high-water mark; CUDA: allocator)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mib = 0.0

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            self.base = _rss_kib("VmRSS") * 1024
        return self

    def __exit__(self, *_exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.mib = (torch.cuda.max_memory_allocated() - self.base) / 2**20
        else:
            self.mib = (_rss_kib("VmHWM") * 1024 - self.base) / 2**20


def build(args, workdir: Path):
    device = torch.device(args.device)
    hf = G.tiny_hf_gemma(seed=0, vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
                         num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=1, head_dim=256,
                         query_pre_attn_scalar=256, sliding_window=512, rope_scaling=None, rope_theta=1e6,
                         rope_local_base_freq=10_000.0, sliding_window_pattern=6)
    hf = hf.to(device)
    gemma = build_gemma(GemmaConfig.from_hf_dict(hf.config.to_dict()), hf.state_dict(), dtype=torch.float32,
                        device=device)  # shares the weight tensors with hf
    cfg = R.tiny_config(args.variant, caption_channels=args.hidden, num_registers=128, connector_heads=4,
                        connector_head_dim=args.hidden // 4 if args.variant == "2.0" else None,
                        video_heads=4, video_head_dim=64, audio_heads=4, audio_head_dim=32)
    ref = R.build_reference(args.variant, cfg, seed=1, num_gemma_states=args.layers + 1)
    ckpt = workdir / "tiny.safetensors"
    R.write_checkpoint(ref, ckpt)
    ref.embeddings_processor.to(device)
    connectors = load_text_connectors(open_checkpoint(ckpt), dtype=torch.float32, device=device)
    folder = G.write_tokenizer_folder(G.train_tiny_sentencepiece(), workdir / "tok")
    encoder = PromptEncoder(gemma, GemmaTokenizer.from_file(folder), connectors, cache_size=0)
    return hf, ref, encoder, folder


def main() -> None:
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        # Fixed glibc mmap threshold: every buffer ≥ 64 KiB is mapped and unmapped, so memory freed by one run is not
        # kept in the heap and reused by the next (which would hide the next run's real peak).
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="2.3", choices=("2.0", "2.3"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--layers", type=int, default=18)
    p.add_argument("--hidden", type=int, default=640)
    p.add_argument("--intermediate", type=int, default=2048)
    p.add_argument("--vocab", type=int, default=262_144)
    p.add_argument("--prompt", default=PROMPT)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        hf, ref, encoder, folder = build(args, Path(tmp))
        ids, mask = G.hf_reference_tokenize(folder, [args.prompt], 1024)
        ids, mask = ids.to(device), mask.to(device)

        def reference():
            states = G.run_hf(hf, ids, mask)
            return R.run_text_path(ref, states, mask)[:2]

        def ours():
            out = encoder.encode(args.prompt)
            return out.video, out.audio

        results, times, peaks = {}, {"reference": [], "ours": []}, {"reference": [], "ours": []}
        for _ in range(args.repeats):
            for name, fn in (("reference", reference), ("ours", ours)):  # alternate: same machine state for both
                with PeakMemory(device) as mem:
                    start = time.perf_counter()
                    results[name] = fn()
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    times[name].append(time.perf_counter() - start)
                peaks[name].append(mem.mib)
    weights = sum(t.numel() * t.element_size() for t in encoder.gemma.state_dict().values()) / 2**20
    delta = max((a - b).abs().max().item() for a, b in zip(results["ours"], results["reference"], strict=True))
    scale = max(r.abs().max().item() for r in results["reference"])
    t_ref, t_ours = statistics.median(times["reference"]), statistics.median(times["ours"])
    m_ref, m_ours = statistics.median(peaks["reference"]), statistics.median(peaks["ours"])
    print(f"LTX-{args.variant} text path, Gemma-3 {args.layers} layers × {args.hidden} (weights {weights:.0f} MiB "
          f"float32), {int(mask.sum())} prompt tokens, context 1024, {args.device}, {args.threads} threads, "
          f"{args.repeats} repeats")
    print(f"  time     reference {t_ref * 1e3:9.1f} ms   ours {t_ours * 1e3:9.1f} ms   "
          f"reference/ours {t_ref / t_ours:6.2f}×")
    print(f"  peak mem reference {m_ref:9.1f} MiB  ours {m_ours:9.1f} MiB  reference/ours "
          f"{m_ref / max(m_ours, 1e-3):6.2f}×")
    print(f"  max |Δ| of the contexts {delta:.2e} (max |reference| {scale:.2f})")


if __name__ == "__main__":
    main()
