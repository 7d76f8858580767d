"""Shared fixtures: tiny reference models (ltx-core 1.0.0) written as official single-file checkpoints, and ours
loaded from those files with our loader."""

from __future__ import annotations

import pytest
import torch

from rs_ltxv.ltx.loading import load_text_connectors, load_transformer, open_checkpoint

from reference import ltx_core_ref as ref_lib

VARIANTS = ("2.0", "2.3")

torch.set_num_threads(2)


def tolerance(reference: torch.Tensor) -> float:
    """The acceptance tolerance: 1e-5 · max(1, max|reference|)."""
    return 1e-5 * max(1.0, reference.abs().max().item())


def assert_close(ours: torch.Tensor, reference: torch.Tensor, what: str = "") -> float:
    assert ours.shape == reference.shape, f"{what}: shape {tuple(ours.shape)} vs {tuple(reference.shape)}"
    delta = (ours.float() - reference.float()).abs().max().item()
    assert delta <= tolerance(reference), f"{what}: max|Δ| = {delta:.3e} > {tolerance(reference):.3e}"
    return delta


def realistic_init(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Re-initialise like a trained network so every path matters: Linear weights ~ N(0, 1/fan_in) (activations
    keep their scale), q/k RMSNorm weights ~ 1 + N(0, 0.1²) (sharp attention, so RoPE and masks change outputs)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in module.modules():
            if isinstance(mod, torch.nn.Linear):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * mod.in_features**-0.5)
                if mod.bias is not None:
                    mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.02)
            elif isinstance(mod, torch.nn.RMSNorm) and mod.weight is not None:
                mod.weight.copy_(1 + 0.1 * torch.randn(mod.weight.shape, generator=gen))
    return module


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
