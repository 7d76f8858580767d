"""Running a transformer larger than free device memory.

* :mod:`.blocks` — :class:`BlockOffload`: block-by-block streaming from (pinned) CPU memory with prefetch of the next
  block, for the CLI (``generate --offload``) and the library (``load_model_parts(offload=True)``).
* :mod:`.cast` — ComfyUI's low-VRAM weight-casting protocol on our layers (:func:`enable_weight_casting`), so
  ComfyUI's memory manager can partially load our MODEL as it does core models. Imports no ComfyUI.
"""

from .blocks import BlockOffload, OffloadStats, check_offload_device
from .cast import (
    CastGGUFLinear,
    CastLinear,
    CastQuantLinear,
    CastRMSNorm,
    CastWeights,
    cast_quantised,
    cast_weight_bias,
    enable_weight_casting,
)

__all__ = ["BlockOffload", "CastGGUFLinear", "CastLinear", "CastQuantLinear", "CastRMSNorm", "CastWeights",
           "OffloadStats", "cast_quantised", "cast_weight_bias", "check_offload_device", "enable_weight_casting"]
