"""Resident weight bytes of a transformer, from a checkpoint header (nothing loaded) or from its config.

Float tensors (F64/F32/F16/BF16) are counted at the run dtype (the loader casts them); anything else (float8,
int8, packed NVFP4, GGUF quant types) at the bytes stored in the file, since it stays quantised in memory.
No ltx-core counterpart.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from ..config import TransformerConfig
from ..loading.source import TensorInfo

FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16", "float32", "float16", "bfloat16", "float64"})
_BLOCK = re.compile(r"^transformer_blocks\.(\d+)\.")


@dataclass(frozen=True)
class TransformerWeights:
    """Bytes of the transformer's weights: ``blocks`` per block (index order), ``other`` everything outside the
    blocks (projections, AdaLN, output layers); ``largest_quantised`` the run-dtype bytes of the largest quantised
    tensor (dequantised once per layer at compute), 0 when none is quantised."""

    blocks: tuple[int, ...]
    other: int
    largest_quantised: int = 0

    @property
    def total(self) -> int:
        """All weight bytes."""
        return sum(self.blocks) + self.other

    def resident(self, offload: bool, blocks_resident: int = 2) -> int:
        """Bytes on the device: all of them, or with block streaming the non-block weights + the largest
        ``blocks_resident`` blocks (the running one and the prefetched next)."""
        if not offload:
            return self.total
        return self.other + sum(sorted(self.blocks, reverse=True)[:blocks_resident])


def weights_from_infos(infos: dict[str, TensorInfo], dtype: torch.dtype) -> TransformerWeights:
    """:class:`TransformerWeights` from module name → :class:`TensorInfo` (``LTXCheckpoint.infos("transformer")``),
    at ``dtype`` for float tensors."""
    e = torch.empty((), dtype=dtype).element_size()
    blocks: dict[int, int] = {}
    other = largest = 0
    for name, info in infos.items():
        floating = str(info.dtype) in FLOAT_DTYPES
        size = math.prod(info.shape) * e if floating else int(info.nbytes)
        if not floating:
            largest = max(largest, math.prod(info.shape) * e)
        match = _BLOCK.match(name)
        if match:
            blocks[int(match.group(1))] = blocks.get(int(match.group(1)), 0) + size
        else:
            other += size
    return TransformerWeights(tuple(blocks[i] for i in sorted(blocks)), other, largest)


def weights_from_config(cfg: TransformerConfig, dtype: torch.dtype) -> TransformerWeights:
    """:class:`TransformerWeights` of a float model of ``cfg`` at ``dtype`` (built on the meta device: no memory)."""
    from ..transformer import LTXAVTransformer

    with torch.device("meta"):
        model = LTXAVTransformer(cfg)
    infos = {n: TensorInfo("F32", tuple(p.shape), p.numel() * 4) for n, p in model.named_parameters()}
    return weights_from_infos(infos, dtype)
