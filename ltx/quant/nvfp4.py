"""NVFP4 pieces: the e2m1 code table and the cuBLAS block-scale tile layout (ComfyUI ``comfy_quant`` ``nvfp4``).

Stored layout of one ``(out, in)`` Linear weight (comfy-kitchen ``TensorCoreNVFP4Layout``; rows and columns padded
to multiples of 16):

* ``weight``: uint8 ``(out_p, in_p / 2)``, two 4-bit e2m1 codes per byte, the even-indexed value in the high nibble;
* ``weight_scale``: float8_e4m3fn block scales, one per 16 consecutive values of a row, stored in cuBLAS's blocked
  layout (the ``(out_p, in_p / 16)`` matrix padded to ``(⌈out/128⌉·128, ⌈in/64⌉·4)`` and tiled in 128×4 blocks,
  each stored as 32×16);
* ``weight_scale_2``: the float32 global (per-tensor) scale.

``W[r, c] = e2m1(code[r, c]) · block_scale[r, c // 16] · global_scale``.
"""

from __future__ import annotations

import torch

#: e2m1 code (sign bit 3, exponent bits 2-1, mantissa bit 0) → value
E2M1_VALUES: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
                                  -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)
BLOCK = 16


def ceil_to(n: int, multiple: int) -> int:
    """``n`` rounded up to a multiple of ``multiple``."""
    return -(-n // multiple) * multiple


def scale_grid(rows: int, cols: int) -> tuple[int, int]:
    """Shape of the stored (padded, blocked) block-scale matrix of a ``rows × cols`` weight (padded sizes)."""
    return ceil_to(rows, 128), ceil_to(cols // BLOCK, 4)


def unpack_codes(packed: torch.Tensor) -> torch.Tensor:
    """uint8 ``(rows, n)`` → codes uint8 ``(rows, 2n)``, high nibble first."""
    return torch.stack((packed >> 4, packed & 0x0F), dim=-1).reshape(packed.shape[0], -1)


def unblock_scales(blocked: torch.Tensor, rows: int, blocks: int) -> torch.Tensor:
    """The cuBLAS blocked scale layout (any shape of ``⌈rows/128⌉·128 × ⌈blocks/4⌉·4`` values) → ``(rows, blocks)``
    in row order (see https://docs.nvidia.com/cuda/cublas/#d-block-scaling-factors-layout)."""
    row_tiles, col_tiles = ceil_to(rows, 128) // 128, ceil_to(blocks, 4) // 4
    tiles = blocked.reshape(row_tiles, col_tiles, 32, 4, 4)  # (tile r, tile c, row in 32, row group of 4, col)
    plain = tiles.permute(0, 3, 2, 1, 4).reshape(row_tiles * 128, col_tiles * 4)
    return plain[:rows, :blocks]


def block_scales(plain: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`unblock_scales`: a ``(rows, blocks)`` scale matrix → the blocked layout, 2-D
    ``(⌈rows/128⌉·128, ⌈blocks/4⌉·4)`` (zero padded). Used by writers (tests, benchmarks)."""
    rows, blocks = plain.shape
    padded = plain.new_zeros(ceil_to(rows, 128), ceil_to(blocks, 4))
    padded[:rows, :blocks] = plain
    row_tiles, col_tiles = padded.shape[0] // 128, padded.shape[1] // 4
    tiles = padded.reshape(row_tiles, 4, 32, col_tiles, 4).permute(0, 3, 2, 1, 4)
    return tiles.reshape(padded.shape)


def decode(packed: torch.Tensor, scales: torch.Tensor, global_scale: torch.Tensor, shape: tuple[int, int],
           dtype: torch.dtype) -> torch.Tensor:
    """NVFP4 tensors of one weight → the ``shape`` ``(out, in)`` weight in ``dtype`` (float32 arithmetic)."""
    rows_p, cols_p = packed.shape[0], packed.shape[1] * 2
    table = torch.tensor(E2M1_VALUES, dtype=torch.float32, device=packed.device)
    values = table[unpack_codes(packed).long()].reshape(rows_p, cols_p // BLOCK, BLOCK)
    scale = unblock_scales(scales.view(torch.float8_e4m3fn).float(), rows_p, cols_p // BLOCK)
    weight = (values * scale.unsqueeze(-1)).reshape(rows_p, cols_p) * global_scale.float().reshape(())
    return weight[: shape[0], : shape[1]].to(dtype)
