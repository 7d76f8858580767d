"""Shared fixtures: tiny reference models (ltx-core 1.0.0) written as official single-file checkpoints, and ours
loaded from those files with our loader. Tests marked ``comfyui`` / ``cuda`` are skipped, with the reason, where
ComfyUI / a CUDA device is missing. Builders live in ``reference/``; test modules never import each other."""

from __future__ import annotations

import os

import pytest
import torch

from rs_ltxv.ltx.loading import load_text_connectors, load_transformer, open_checkpoint

from reference import ltx_core_ref as ref_lib
from reference.builders import realistic_init
from reference.comfyui import COMFYUI

VARIANTS = ("2.0", "2.3")

torch.set_num_threads(2)
# every Ray the tests start (here, in ComfyUI subprocesses, in workers) listens on 127.0.0.1 only; read by Ray when it
# is imported (rs_ltxv.distributed.cluster.LOOPBACK_ENV)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def pytest_collection_modifyitems(config, items):
    """Skip what the machine cannot run: ``comfyui`` tests without ``COMFYUI_PATH``, ``cuda`` tests without a CUDA
    device. Select or leave them out with ``-m comfyui`` / ``-m cuda`` / ``-m "not comfyui"``."""
    needs = {"comfyui": (lambda: bool(COMFYUI), "COMFYUI_PATH is not set"),
             "cuda": (torch.cuda.is_available, "needs a CUDA device")}
    for name, (available, reason) in needs.items():
        marked = [item for item in items if item.get_closest_marker(name)]
        if marked and not available():
            for item in marked:
                item.add_marker(pytest.mark.skip(reason=reason))


def tolerance(reference: torch.Tensor) -> float:
    """The acceptance tolerance: 1e-5 · max(1, max|reference|)."""
    return 1e-5 * max(1.0, reference.abs().max().item())


def assert_close(ours: torch.Tensor, reference: torch.Tensor, what: str = "") -> float:
    assert ours.shape == reference.shape, f"{what}: shape {tuple(ours.shape)} vs {tuple(reference.shape)}"
    delta = (ours.float() - reference.float()).abs().max().item()
    assert delta <= tolerance(reference), f"{what}: max|Δ| = {delta:.3e} > {tolerance(reference):.3e}"
    return delta


class Pair:
    """A reference model set and our models loaded from its official-format checkpoint."""

    def __init__(self, variant: str, directory) -> None:
        self.variant = variant
        self.ref = ref_lib.build_reference(variant, seed=11)
        realistic_init(self.ref.transformer, 12)
        realistic_init(self.ref.embeddings_processor, 13)
        self.path = directory / f"tiny-ltx-{variant}.safetensors"
        ref_lib.write_checkpoint(self.ref, self.path)
        self.checkpoint = open_checkpoint(self.path)
        self.model = load_transformer(self.checkpoint, dtype=torch.float32)
        self.text = load_text_connectors(self.checkpoint, dtype=torch.float32)


@pytest.fixture(scope="session", params=VARIANTS)
def pair(request, tmp_path_factory) -> Pair:
    return Pair(request.param, tmp_path_factory.mktemp(f"ltx{request.param}"))


@pytest.fixture(scope="session")
def ltx25_set(tmp_path_factory) -> dict:
    """The tiny LTX-2.5 set, written once by the CLI (``tiny DIR --set --version 2.5``): file name → path. Tests
    read these files; anything they write goes elsewhere."""
    import contextlib
    import io

    from rs_ltxv.__main__ import main
    from rs_ltxv.ltx.tiny import TINY_SET_25

    out = tmp_path_factory.mktemp("ltx25-set") / "models"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["tiny", str(out), "--set", "--version", "2.5"]) == 0
    return {f.name: out / f.folder / f.name for f in TINY_SET_25}
