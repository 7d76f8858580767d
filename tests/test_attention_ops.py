"""Attention backends resolved by name; SDPA equals an explicit softmax attention."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from rs_ltxv.ops import AttentionBackendError, attention, available_backends, resolve_backend


def test_default_and_auto_on_cpu():
    assert resolve_backend(None) == "sdpa"
    assert resolve_backend("auto", torch.device("cpu")) == "sdpa"
    assert "sdpa" in available_backends()


def test_unknown_backend():
    with pytest.raises(AttentionBackendError, match="Unknown attention mode 'xformerz'"):
        resolve_backend("xformerz")


@pytest.mark.skipif(importlib.util.find_spec("sageattention") is not None, reason="sageattention is installed")
def test_missing_package_says_what_to_install():
    with pytest.raises(AttentionBackendError, match="pip install sageattention"):
        resolve_backend("sage")


def test_sdpa_matches_softmax_with_additive_mask():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
    mask = torch.zeros(2, 1, 5, 5)
    mask[0, :, :, 3:] = torch.finfo(torch.float32).min
    expected = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5 + mask, dim=-1) @ v
    torch.testing.assert_close(attention(q, k, v, mask), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sage", "flash"])
def test_gpu_backends_fall_back_to_sdpa_on_cpu(name):
    from rs_ltxv.ops.attention import BACKENDS

    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 4, 8, generator=g) for _ in range(3))
    torch.testing.assert_close(BACKENDS[name].fn(q, k, v, None), attention(q, k, v))
