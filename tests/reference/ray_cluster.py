"""What the Ray runtime tests share: tiny model files written once (a full float32 LTX-2.3 checkpoint and a latent
upsampler), the parts loaded from them, prompt contexts, and process checks.

Everything runs on 127.0.0.1: :func:`rs_ltxv.distributed.pool.ensure_ray` starts Ray there, and the workers keep
gloo on the loopback interface when rank 0 listens on it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from rs_ltxv.ltx.pipeline.parts import load_model_parts
from rs_ltxv.ltx.pipeline.protocols import ModelParts
from rs_ltxv.ltx.text.processor import TextContexts
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.ltx.tiny_parts import write_tiny_upsampler

#: the package's folders a copy of the pack needs (no tests, workflows or virtual environment)
PACK_IGNORE = shutil.ignore_patterns(".venv", ".git", "tests", "benchmarks", "example_workflows", "scripts",
                                     "__pycache__", "*.egg-info", "build", "dist", ".ruff_cache", ".pytest_cache")


@dataclass
class TinyRun:
    """A tiny full LTX-2.3 checkpoint (float32, 16 latent channels) at ``checkpoint`` with its ``parts`` loaded (the
    2× upsampler included) and prompt contexts ``positive`` / ``negative``."""

    checkpoint: str
    parts: ModelParts
    positive: TextContexts
    negative: TextContexts


def tiny_run(directory: Path, seed: int = 3) -> TinyRun:
    """Write the tiny files into ``directory`` and load them (float32, CPU)."""
    ckpt = write_tiny_checkpoint(directory / "tiny-ltx-2.3.safetensors", "2.3", seed=seed, dtype=torch.float32,
                                 full=True)
    ups = write_tiny_upsampler(directory / "tiny-upsampler.safetensors", channels=16, seed=seed + 5)
    parts = load_model_parts(ckpt, upsampler=ups, dtype=torch.float32, tiling=None)
    cfg = parts.transformer.config
    g = torch.Generator().manual_seed(seed)

    def contexts() -> TextContexts:
        return TextContexts(torch.randn(1, 8, cfg.cross_attention_dim, generator=g),
                            torch.randn(1, 8, cfg.audio_cross_attention_dim, generator=g), torch.ones(1, 8))

    return TinyRun(ckpt, parts, contexts(), contexts())


def copy_pack(destination: Path) -> Path:
    """A copy of the pack's code at ``destination`` (e.g. a folder whose name has spaces, as under
    ``custom_nodes``); returns it."""
    root = Path(__file__).resolve().parents[2]
    shutil.copytree(root, destination, ignore=PACK_IGNORE)
    return destination


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True
