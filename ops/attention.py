"""Attention backends, chosen by name from a table.

All backends take queries, keys and values laid out as ``(B, H, T, D)`` (batch, heads, tokens, head dim) and an
optional additive mask broadcastable to ``(B, H, Tq, Tk)``, and return ``(B, H, Tq, D)``.

The table mirrors ltx-core's ``ltx_core.model.transformer.attention.AttentionFunction`` (``PYTORCH`` →
``PytorchAttention``, ``FLASH_ATTENTION_3`` → ``FlashAttention3``), which takes ``(B, T, H·D)`` and the head count
instead of ``(B, H, T, D)``.

Backends:
    ``sdpa``  — :func:`torch.nn.functional.scaled_dot_product_attention` (default; the numerics of ltx-core's
                ``PytorchAttention``).
    ``sage``  — SageAttention (INT8 QK, CUDA only, no mask); falls back to ``sdpa`` when a mask is given.
    ``flash`` — FlashAttention 2/3 (CUDA, fp16/bf16, no mask); falls back to ``sdpa`` when it cannot run.
    ``auto``  — the fastest backend that is installed and can run these tensors.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


class AttentionBackendError(ValueError):
    """An attention backend was requested that does not exist or is not installed. A ``ValueError`` (``ops`` only
    depends on torch, so it does not subclass ``rs_ltxv.ltx.errors.RSLTXVError``); the CLI treats it as a user
    error."""


# shown by ComfyUI as rs_ltxv.…, not the pack's folder path
AttentionBackendError.__module__ = f"rs_ltxv.{__name__.partition('.')[2]}" if "." in __name__ else __name__


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is not None and mask.dtype != q.dtype and mask.dtype != torch.bool:
        mask = mask.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, is_causal=False)


#: SageAttention 1.x (Triton) has kernels for these head dims only, and its key loop (blocks of 64) loads missing keys
#: of a partial last block as zeros without masking their scores: each one adds exp(0 - max) to the softmax
#: denominator, so key lengths that are not a multiple of 64 give visibly wrong results (measured on an H100 with
#: 1.0.6: max|Δ| 0.28 at 77 keys vs 0.006 for bf16 SDPA).
_SAGE_HEAD_DIMS = (64, 96, 128)
_SAGE_KEY_BLOCK = 64


def _sage(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if (mask is not None or not q.is_cuda or q.dtype not in (torch.float16, torch.bfloat16)
            or q.shape[-1] not in _SAGE_HEAD_DIMS or k.shape[-2] % _SAGE_KEY_BLOCK):
        return _sdpa(q, k, v, mask)
    sageattn = importlib.import_module("sageattention").sageattn
    return sageattn(q, k, v, tensor_layout="HND", is_causal=False)


def _flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is not None or not q.is_cuda or q.dtype not in (torch.float16, torch.bfloat16):
        return _sdpa(q, k, v, mask)
    for module_name in ("flash_attn_interface", "flash_attn"):
        if importlib.util.find_spec(module_name) is not None:
            fn = importlib.import_module(module_name).flash_attn_func
            out = fn(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
            out = out[0] if isinstance(out, tuple) else out
            return out.transpose(1, 2)
    return _sdpa(q, k, v, mask)


@dataclass(frozen=True)
class Backend:
    """One attention implementation: the function, the module it needs, and its rank for ``auto``."""

    fn: AttentionFn
    requires: tuple[str, ...]
    auto_rank: int  # lower is preferred by "auto"
    needs_cuda: bool


BACKENDS: dict[str, Backend] = {
    "sdpa": Backend(_sdpa, (), 2, False),
    "sage": Backend(_sage, ("sageattention",), 0, True),
    "flash": Backend(_flash, ("flash_attn_interface|flash_attn",), 1, True),
}


def _installed(backend: Backend) -> bool:
    return all(any(importlib.util.find_spec(m) is not None for m in req.split("|")) for req in backend.requires)


def available_backends() -> list[str]:
    """Names of the backends whose packages are installed (``sdpa`` always is), in table order."""
    return [name for name, b in BACKENDS.items() if _installed(b)]


def _auto_worthy(name: str) -> bool:
    """SageAttention 1.x (Triton) measured 1.17× slower than SDPA on an H100 (benchmarks/transformer_gpu.py, LTX-2.3
    widths, 7294 tokens, bf16), so ``auto`` only picks sage from version 2 (CUDA kernels) on."""
    if name != "sage":
        return True
    try:
        return int(importlib.metadata.version("sageattention").split(".")[0]) >= 2
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False


ALIASES = ("auto", "default", "pytorch")  # "default" / "pytorch": SDPA (ComfyUI's attention_mode vocabulary)


def check_attention_mode(name: str | None) -> None:
    """Check that ``name`` is a known attention mode (installed or not); None passes.

    Raises:
        AttentionBackendError: an unknown name (the message lists the choices).
    """
    if name is not None and name not in ALIASES and name not in BACKENDS:
        choices = ", ".join((*ALIASES, *BACKENDS))
        raise AttentionBackendError(f"Unknown attention mode {name!r}; choose one of: {choices}.")


def resolve_backend(name: str | None, device: torch.device | None = None) -> str:
    """Turn a user-facing name (``None``/"auto"/"default"/"pytorch"/"sdpa"/"sage"/"flash") into a backend that can
    run here; ``device`` lets ``auto`` pick a CUDA-only backend. Like ltx-core's ``AttentionFunction.DEFAULT``
    (the fastest installed kernel), by name.

    Raises:
        AttentionBackendError: an unknown name, or an explicitly requested backend that is not installed.
    """
    if name is None or name in ("default", "pytorch"):
        return "sdpa"
    if name == "auto":
        on_cuda = device is not None and device.type == "cuda"
        usable = [n for n, b in BACKENDS.items()
                  if _installed(b) and (on_cuda or not b.needs_cuda) and _auto_worthy(n)]
        return min(usable, key=lambda n: BACKENDS[n].auto_rank)
    check_attention_mode(name)
    if not _installed(BACKENDS[name]):
        pkg = BACKENDS[name].requires[0].replace("|", " or ")
        raise AttentionBackendError(
            f"Attention backend {name!r} needs the package {pkg}, which is not installed. "
            f"Install it (pip install {pkg.split(' ')[0]}) or choose 'sdpa'."
        )
    return name


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    backend: str | AttentionFn = "sdpa",
) -> torch.Tensor:
    """Scaled dot-product attention over ``(B, H, T, D)`` tensors with an optional additive mask. Mirrors
    ``ltx_core.model.transformer.attention.AttentionFunction.__call__`` after its ``(B, T, H·D)`` → ``(B, H, T, D)``
    reshape.

    Args:
        q: queries ``(B, H, Tq, D)``; k, v: keys and values ``(B, H, Tk, D)``.
        mask: additive bias broadcastable to ``(B, H, Tq, Tk)`` (0 = attend, large negative = masked), or None.
        backend: a name already resolved by :func:`resolve_backend`, or a callable with this function's signature
            (a sequence-parallel wrapper, a patched kernel).
    Returns:
        ``(B, H, Tq, D)``.
    """
    if callable(backend):
        return backend(q, k, v, mask)
    return BACKENDS[backend].fn(q, k, v, mask)
