"""Torch dequantisation of GGML tensor types, table-driven (``DEQUANTIZERS``: type → function).

Every kernel takes raw blocks ``(n_blocks, type_size)`` as uint8 on any device and returns float32 values
``(n_blocks, block_size)`` computed with the same float32 operations, in the same order, as the NumPy reference in
``gguf.quants`` — so results are bit-identical to ``gguf.quants.dequantize``. Byte layouts follow ggml's
``block_*`` structs (little-endian, fp16 scales). ComfyUI-GGUF's ``dequant.py`` (``dequantize_blocks_*``) does the
same on the GPU with its own operation order.

Errors are :class:`~.errors.GGUFError` / :class:`~.errors.UnsupportedQuantError` (``ValueError`` subclasses).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from .errors import GGUFError, UnsupportedQuantError

Q = GGMLQuantizationType
QK_K = 256
IQ4_VALUES = (-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113)
PLAIN_FLOAT = {Q.F32: torch.float32, Q.F16: torch.float16}  # stored as ordinary tensors


def _f16(blocks: torch.Tensor, start: int) -> torch.Tensor:
    """fp16 scale at byte ``start`` of every block, as float32 of shape ``(n, 1)``."""
    return blocks[:, start:start + 2].contiguous().view(torch.float16).float()


def _shifts(values: Sequence[int], device: torch.device, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.uint8, device=device).reshape(shape)


def _nibbles(qs: torch.Tensor, group: int) -> torch.Tensor:
    """Low nibbles of each ``group`` bytes, then their high nibbles: shape ``(n, G, group)`` → ``(n, G, 2, group)``."""
    n = qs.shape[0]
    return (qs.reshape(n, -1, 1, group) >> _shifts((0, 4), qs.device, (1, 1, 2, 1))) & 0x0F


def _bits(qh: torch.Tensor) -> torch.Tensor:
    """Bits of little-endian bytes, shape ``(n, B)`` → ``(n, 8·B)``, bit i of the word at position i."""
    n = qh.shape[0]
    return ((qh.reshape(n, -1, 1) >> torch.arange(8, dtype=torch.uint8, device=qh.device)) & 1).reshape(n, -1)


def _lookup_iq4(idx: torch.Tensor) -> torch.Tensor:
    table = torch.tensor(IQ4_VALUES, dtype=torch.float32, device=idx.device)
    return table[idx.long()]


def _bf16(b: torch.Tensor) -> torch.Tensor:
    return (b.contiguous().view(torch.int16).to(torch.int32) << 16).view(torch.float32)


def _f16_plain(b: torch.Tensor) -> torch.Tensor:
    return b.contiguous().view(torch.float16).float()


def _f32(b: torch.Tensor) -> torch.Tensor:
    return b.contiguous().view(torch.float32)


def _q8_0(b: torch.Tensor) -> torch.Tensor:
    return b[:, 2:].contiguous().view(torch.int8).float() * _f16(b, 0)


def _q4_0(b: torch.Tensor) -> torch.Tensor:
    q = _nibbles(b[:, 2:], 16).reshape(b.shape[0], -1).to(torch.int8) - 8
    return _f16(b, 0) * q.float()


def _q4_1(b: torch.Tensor) -> torch.Tensor:
    q = _nibbles(b[:, 4:], 16).reshape(b.shape[0], -1).float()
    return _f16(b, 0) * q + _f16(b, 2)


def _q5(b: torch.Tensor, qh_at: int) -> torch.Tensor:
    high = _bits(b[:, qh_at:qh_at + 4])
    low = _nibbles(b[:, qh_at + 4:], 16).reshape(b.shape[0], -1)
    return low | (high << 4)


def _q5_0(b: torch.Tensor) -> torch.Tensor:
    return _f16(b, 0) * (_q5(b, 2).to(torch.int8) - 16).float()


def _q5_1(b: torch.Tensor) -> torch.Tensor:
    return _f16(b, 0) * _q5(b, 4).float() + _f16(b, 2)


def _q2_k(b: torch.Tensor) -> torch.Tensor:
    n = b.shape[0]
    scales, qs = b[:, :16], b[:, 16:80]
    dl = (_f16(b, 80) * (scales & 0x0F).float()).reshape(n, 16, 1)
    ml = (_f16(b, 82) * (scales >> 4).float()).reshape(n, 16, 1)
    q = (qs.reshape(n, -1, 1, 32) >> _shifts((0, 2, 4, 6), b.device, (1, 1, 4, 1))) & 3
    return (dl * q.reshape(n, 16, 16).float() - ml).reshape(n, QK_K)


def _q3_k(b: torch.Tensor) -> torch.Tensor:
    n = b.shape[0]
    hmask, qs, scales = b[:, :32], b[:, 32:96], b[:, 96:108]
    low = (scales[:, :8].reshape(n, 1, 8) >> _shifts((0, 4), b.device, (1, 2, 1))).reshape(n, 16)
    high = (scales[:, 8:].reshape(n, 1, 4) >> _shifts((0, 2, 4, 6), b.device, (1, 4, 1))).reshape(n, 16)
    sc = ((low & 0x0F) | ((high & 3) << 4)).to(torch.int8) - 32
    dl = (_f16(b, 108) * sc.float()).reshape(n, 16, 1)
    ql = ((qs.reshape(n, -1, 1, 32) >> _shifts((0, 2, 4, 6), b.device, (1, 1, 4, 1))).reshape(n, 16, 16)) & 3
    qh = ((hmask.reshape(n, -1, 1, 32) >> torch.arange(8, dtype=torch.uint8, device=b.device).reshape(1, 1, 8, 1))
          .reshape(n, 16, 16) & 1) ^ 1  # a set high bit means "no offset"
    q = (ql.to(torch.int8) - (qh << 2).to(torch.int8)).float()
    return (dl * q).reshape(n, QK_K)


def _k_scales(scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """6-bit scales and mins of Q4_K/Q5_K from their 12 packed bytes → two uint8 tensors of shape ``(n, 8)``."""
    s = scales.reshape(-1, 3, 4)
    d, m, md = s[:, 0], s[:, 1], s[:, 2]
    sc = torch.cat([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], dim=-1)
    mn = torch.cat([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], dim=-1)
    return sc, mn


def _k_affine(b: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    n = b.shape[0]
    sc, mn = _k_scales(b[:, 4:16])
    d = (_f16(b, 0) * sc.float()).reshape(n, -1, 1)
    dm = (_f16(b, 2) * mn.float()).reshape(n, -1, 1)
    return (d * q.float() - dm).reshape(n, QK_K)


def _q4_k(b: torch.Tensor) -> torch.Tensor:
    return _k_affine(b, _nibbles(b[:, 16:], 32).reshape(b.shape[0], -1, 32))


def _q5_k(b: torch.Tensor) -> torch.Tensor:
    n = b.shape[0]
    low = _nibbles(b[:, 48:], 32).reshape(n, -1, 32)
    high = ((b[:, 16:48].reshape(n, -1, 1, 32) >> torch.arange(8, dtype=torch.uint8, device=b.device)
             .reshape(1, 1, 8, 1)) & 1).reshape(n, -1, 32)
    return _k_affine(b, low | (high << 4))


def _q6_k(b: torch.Tensor) -> torch.Tensor:
    n = b.shape[0]
    ql, qh, scales = b[:, :128], b[:, 128:192], b[:, 192:208]
    d = (_f16(b, 208) * scales.contiguous().view(torch.int8).float()).reshape(n, 16, 1)
    low = _nibbles(ql, 64).reshape(n, -1, 32)
    high = ((qh.reshape(n, -1, 1, 32) >> _shifts((0, 2, 4, 6), b.device, (1, 1, 4, 1))) & 3).reshape(n, -1, 32)
    q = (low | (high << 4)).to(torch.int8) - 32
    return (d * q.reshape(n, 16, -1).float()).reshape(n, QK_K)


def _iq4_nl(b: torch.Tensor) -> torch.Tensor:
    return _f16(b, 0) * _lookup_iq4(_nibbles(b[:, 2:], 16).reshape(b.shape[0], -1))


def _iq4_xs(b: torch.Tensor) -> torch.Tensor:
    n = b.shape[0]
    high = ((b[:, 2:4].reshape(n, 2, 1) >> _shifts((0, 2, 4, 6), b.device, (1, 1, 4))) & 3).reshape(n, 8)
    low = ((b[:, 4:8].reshape(n, 4, 1) >> _shifts((0, 4), b.device, (1, 1, 2))) & 0x0F).reshape(n, 8)
    sc = (low | (high << 4)).to(torch.int8) - 32
    dl = (_f16(b, 0) * sc.float()).reshape(n, -1, 1)
    q = _lookup_iq4(_nibbles(b[:, 8:], 16).reshape(n, -1, 32))
    return (dl * q).reshape(n, QK_K)


DEQUANTIZERS: dict[GGMLQuantizationType, Callable[[torch.Tensor], torch.Tensor]] = {
    Q.F32: _f32, Q.F16: _f16_plain, Q.BF16: _bf16,
    Q.Q8_0: _q8_0, Q.Q4_0: _q4_0, Q.Q4_1: _q4_1, Q.Q5_0: _q5_0, Q.Q5_1: _q5_1,
    Q.Q2_K: _q2_k, Q.Q3_K: _q3_k, Q.Q4_K: _q4_k, Q.Q5_K: _q5_k, Q.Q6_K: _q6_k,
    Q.IQ4_NL: _iq4_nl, Q.IQ4_XS: _iq4_xs,
}
SUPPORTED = frozenset(DEQUANTIZERS)


def type_name(qtype: int | GGMLQuantizationType) -> str:
    """The GGML type's name ("Q4_K"), or "unknown GGML type id N" for an id the ``gguf`` package does not know."""
    try:
        return GGMLQuantizationType(int(qtype)).name
    except ValueError:
        return f"unknown GGML type id {int(qtype)}"


def check_supported(qtype: int | GGMLQuantizationType, what: str = "tensor") -> GGMLQuantizationType:
    """The type as a ``gguf.GGMLQuantizationType`` member.

    Raises:
        UnsupportedQuantError: no dequantiser here (the message names the type, ``what`` holds it, and lists the
            supported types).
    """
    try:
        qt = GGMLQuantizationType(int(qtype))
    except ValueError:
        qt = None
    if qt not in DEQUANTIZERS:
        names = ", ".join(t.name for t in DEQUANTIZERS)
        raise UnsupportedQuantError(f"{what} is stored as {type_name(qtype)}, which RS-LTXV cannot dequantise "
                                    f"(supported: {names}). Use a file quantised to one of those types.")
    return qt


def byte_shape(qtype: GGMLQuantizationType, shape: Sequence[int]) -> tuple[int, ...]:
    """Shape of the raw bytes of a tensor of logical ``shape`` (torch order): ``(*shape[:-1], shape[-1] / block ·
    type_size)``, the last dim in bytes (``gguf.GGML_QUANT_SIZES``; like ``gguf.quants.quant_shape_to_byte_shape``).

    Raises:
        GGUFError: the last dim is not a whole number of blocks.
    """
    block, size = GGML_QUANT_SIZES[qtype]
    if not shape or shape[-1] % block:
        raise GGUFError(f"a {qtype.name} tensor needs its last dimension to be a multiple of {block}; got {shape}")
    return (*shape[:-1], shape[-1] // block * size)


def dequantize(data: torch.Tensor, qtype: int | GGMLQuantizationType, shape: Sequence[int],
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Dequantise raw bytes ``data`` (uint8, any shape, on any device) of a ``qtype`` tensor of logical ``shape``
    (torch order) to a tensor of that ``shape`` in ``dtype`` on the same device. Values are computed in float32, then
    cast. Mirrors ``gguf.quants.dequantize`` (bit-identical) and ComfyUI-GGUF's ``dequant.dequantize``.

    Raises:
        UnsupportedQuantError: ``qtype`` has no dequantiser here.
        GGUFError: ``data`` does not hold a tensor of ``shape``.
    """
    qt = check_supported(qtype)
    block, size = GGML_QUANT_SIZES[qt]
    raw = data.reshape(-1)
    if raw.dtype != torch.uint8:
        raw = raw.view(torch.uint8)
    numel = 1
    for d in shape:
        numel *= int(d)
    if numel % block or raw.numel() != numel // block * size:
        raise GGUFError(f"{qt.name} data of {raw.numel()} bytes does not hold a tensor of shape {tuple(shape)} "
                        f"({numel // block * size} bytes expected).")
    out = DEQUANTIZERS[qt](raw.reshape(-1, size)).reshape(tuple(shape))
    return out if out.dtype == dtype else out.to(dtype)
