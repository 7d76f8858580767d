"""Write GGUF files from torch state dicts (tests, benchmarks, small conversions).

Types the ``gguf`` package can quantise (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) use ``gguf.quants.quantize``.
Q4_K, which the package cannot produce, uses :func:`quantize_q4_k`: a plain min/max fit per 32-value sub-block with
6-bit sub-scales — valid Q4_K blocks, but without llama.cpp's error-minimising search, so its error is somewhat
larger than llama.cpp's Q4_K.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize

from .errors import GGUFError

Q = GGMLQuantizationType


def _round(x: np.ndarray) -> np.ndarray:
    return np.floor(x + np.float32(0.5))


def quantize_q4_k(values: np.ndarray) -> np.ndarray:
    """Float32 ``(..., K)`` with K a multiple of 256 → Q4_K bytes ``(..., K / 256 · 144)`` (ggml's ``block_q4_K``;
    ``gguf.quants.Q4_K`` can only dequantise).

    Raises:
        GGUFError: K is not a multiple of 256.
    """
    x = np.asarray(values, dtype=np.float32)
    if x.shape[-1] % 256:
        raise GGUFError(f"Q4_K needs rows that are a multiple of 256 values; got {x.shape}")
    blocks = x.reshape(-1, 8, 32)
    n = blocks.shape[0]
    lo = np.minimum(blocks.min(axis=-1), 0.0)  # (n, 8) sub-block minimum (≤ 0: stored as a positive offset)
    scale = (blocks.max(axis=-1) - lo) / 15.0
    d = (scale.max(axis=-1) / 63.0).astype(np.float16)
    dmin = ((-lo).max(axis=-1) / 63.0).astype(np.float16)
    d32, dmin32 = d.astype(np.float32)[:, None], dmin.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d32 > 0, np.clip(_round(scale / d32), 0, 63), 0).astype(np.uint8)
        mn = np.where(dmin32 > 0, np.clip(_round(-lo / dmin32), 0, 63), 0).astype(np.uint8)
        step = (d32 * sc)[..., None]
        q = np.where(step > 0, _round((blocks + (dmin32 * mn)[..., None]) / step), 0)
    q = np.clip(q, 0, 15).astype(np.uint8)  # (n, 8, 32)
    packed = np.zeros((n, 12), dtype=np.uint8)
    packed[:, 0:4] = sc[:, :4] | ((sc[:, 4:] >> 4) << 6)
    packed[:, 4:8] = mn[:, :4] | ((mn[:, 4:] >> 4) << 6)
    packed[:, 8:12] = (sc[:, 4:] & 0x0F) | ((mn[:, 4:] & 0x0F) << 4)
    qs = (q[:, 0::2] | (q[:, 1::2] << 4)).reshape(n, 128)
    out = np.concatenate([d.reshape(n, 1).view(np.uint8), dmin.reshape(n, 1).view(np.uint8), packed, qs], axis=1)
    return out.reshape(*x.shape[:-1], x.shape[-1] // 256 * 144)


def encode(tensor: torch.Tensor, qtype: GGMLQuantizationType) -> np.ndarray:
    """A tensor's GGUF payload: typed array of the tensor's shape for F32/F16, uint8 bytes ``(…, row_bytes)``
    otherwise (``gguf.quants.quantize``, or :func:`quantize_q4_k`).

    Raises:
        GGUFError: the ``gguf`` package cannot quantise to ``qtype``; Q4_K rows are not a multiple of 256.
    """
    x = tensor.detach().float().cpu().numpy()
    if qtype == Q.F32:
        return x
    if qtype == Q.F16:
        return x.astype(np.float16)
    if qtype == Q.Q4_K:
        return quantize_q4_k(x)
    try:
        return quantize(x, qtype)
    except NotImplementedError as exc:
        raise GGUFError(f"the gguf package cannot quantise to {qtype.name}; write F32/F16/BF16/Q8_0/Q4_0/Q4_1/"
                        "Q5_0/Q5_1/Q4_K instead") from exc


def write_gguf(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
               qtype: GGMLQuantizationType | Callable[[str, torch.Tensor], GGMLQuantizationType] = Q.F32, *,
               arch: str = "ltxv", metadata: dict[str, str | int | float] | None = None) -> str:
    """Write ``tensors`` (any shape, torch order) to ``path`` with ``qtype`` (or ``qtype(name, tensor)`` per tensor)
    through ``gguf.GGUFWriter``; string, int and float ``metadata`` entries become GGUF key/values. Returns the path.

    Raises:
        GGUFError: a metadata value of another type; see :func:`encode`.
    """
    writer = GGUFWriter(str(path), arch=arch)
    for key, value in (metadata or {}).items():
        if isinstance(value, str):
            writer.add_string(key, value)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise GGUFError(f"metadata {key}: only str, int and float values are written here")
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        else:
            writer.add_float32(key, value)
    for name, tensor in tensors.items():
        qt = qtype(name, tensor) if callable(qtype) else qtype
        data = encode(tensor, qt)
        if qt in (Q.F32, Q.F16):
            writer.add_tensor(name, data)
        else:
            writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=qt)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)
