"""Seeded random weights for tiny test and demo models (no downloads): :func:`random_init`."""

from __future__ import annotations

from typing import TypeVar

import torch

M = TypeVar("M", bound=torch.nn.Module)


def random_init(module: M, seed: int, std: float = 0.05) -> M:
    """Materialise (a meta-device module too) and fill every parameter of ``module`` with seeded ``N(0, std²)``
    values, in place; returns it in eval mode. Buffers are left as they are."""
    gen = torch.Generator().manual_seed(seed)
    for name, param in list(module.named_parameters()):
        value = torch.randn(param.shape, generator=gen) * std
        owner = module.get_submodule(name.rpartition(".")[0]) if "." in name else module
        setattr(owner, name.rpartition(".")[2], torch.nn.Parameter(value, requires_grad=False))
    return module.eval()
