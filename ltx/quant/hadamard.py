"""ConvRot's group-wise Hadamard rotation (the ``int8_tensorwise`` + ``convrot`` layout of ComfyUI / comfy-kitchen).

A ConvRot weight is stored rotated: each row is cut into groups of ``group_size`` input features and every group is
multiplied by ``Hᵀ``, where ``H`` is the *regular* normalised Hadamard matrix of order ``group_size`` (a power of 4):
``H = (H₄ ⊗ H₄ ⊗ …) / √group_size`` with ``H₄ = [[1,1,1,-1],[1,1,-1,1],[1,-1,1,1],[-1,1,1,1]]``. ``H`` is symmetric
and orthogonal (``H·H = I``), so the same product undoes the rotation: ``W = rot(W_rot)``. ``group_size`` is the
``convrot_groupsize`` of the layer's ``comfy_quant`` JSON (256 in the published files).
"""

from __future__ import annotations

import functools
import math

import torch

from ..errors import CheckpointError

_H4 = ((1, 1, 1, -1), (1, 1, -1, 1), (1, -1, 1, 1), (-1, 1, 1, 1))


@functools.lru_cache(maxsize=8)
def _hadamard_cpu(size: int) -> torch.Tensor:
    h4 = torch.tensor(_H4, dtype=torch.float64)
    h = h4
    while h.shape[0] < size:
        h = torch.kron(h, h4)
    return (h / math.sqrt(size)).float()


def hadamard(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The regular normalised Hadamard matrix ``(size, size)`` float32 on ``device``.

    Raises:
        CheckpointError: ``size`` is not a power of 4 (at least 4).
    """
    if size < 4 or 4 ** round(math.log(size, 4)) != size:
        raise CheckpointError(f"ConvRot group size {size} is not a power of 4 (4, 16, 64, 256 …); the layer's "
                              "comfy_quant 'convrot_groupsize' is corrupt. Convert the file again.")
    return _hadamard_cpu(size).to(device)


def rotate_groups(matrix: torch.Tensor, group_size: int) -> torch.Tensor:
    """``matrix (rows, cols)`` with every ``group_size`` columns multiplied by ``H`` (float32 result); it is its own
    inverse. Mirrors comfy-kitchen ``int8_utils._rotate_weight`` (``W @ H_blockᵀ`` with symmetric ``H``).

    Raises:
        CheckpointError: ``cols`` is not a multiple of ``group_size``, or ``group_size`` is not a power of 4.
    """
    rows, cols = matrix.shape[-2], matrix.shape[-1]
    if cols % group_size:
        raise CheckpointError(f"ConvRot group size {group_size} does not divide the {cols} input features of a "
                              "layer; the comfy_quant metadata does not belong to this weight.")
    h = hadamard(group_size, matrix.device)
    return (matrix.float().reshape(rows, cols // group_size, group_size) @ h).reshape(rows, cols)
