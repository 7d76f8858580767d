"""The ``auto`` settings of the nodes (``ffn_chunks`` 0) and the CLI (``--ffn-chunks auto``, ``--offload auto``): one
call to :func:`~.planner.plan_memory` with the device's free memory as the budget. No ltx-core counterpart.

The caller measures the free memory (the nodes through ComfyUI's ``get_free_memory``, the CLI through
:func:`device_free_bytes` or ``--vram``); ``None`` means unlimited (the CPU), which gives ``ffn_chunks`` 1, no
offload and an untiled decode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import TransformerConfig
from ..pipeline.latents import VideoSize
from ..video_vae.config import VideoVAEConfig
from ..video_vae.diffusion import DiffusionDecoderConfig
from ..video_vae.tiling import TilingConfig
from .planner import DEFAULT_RESERVE, MemoryPlan, plan_memory
from .weights import TransformerWeights

#: the ``ffn_chunks`` node widget value that means "auto" (saved workflows from before ``auto`` hold 0 = off, which
#: resolves to 1 whenever memory is plentiful, so they run as before)
AUTO_FFN_CHUNKS = 0
AUTO = "auto"


@dataclass(frozen=True)
class AutoSettings:
    """What ``auto`` resolved to: ``ffn_chunks``, ``offload`` (block streaming, ``--offload``), the VAE decode
    ``tiling`` (None = untiled; LTX-2.5's diffusion decoder: its fixed tiles) and the :class:`~.planner.MemoryPlan`
    behind them (``plan.fits``)."""

    ffn_chunks: int
    offload: bool
    tiling: TilingConfig | None
    plan: MemoryPlan

    @property
    def fits(self) -> bool:
        """Whether the plan fits the free memory (always True when it was unlimited)."""
        return self.plan.fits


def auto_settings(config: TransformerConfig, size: VideoSize, free_bytes: int | None, *,
                  weights: TransformerWeights | None = None, weights_loaded: bool = False,
                  dtype: torch.dtype = torch.bfloat16, upscale: bool = False, images: int = 0, audio: bool = True,
                  vae: VideoVAEConfig | DiffusionDecoderConfig | None = None, vae_weights: int = 0,
                  ffn_chunks: int | None = None, offload: bool | None = None,
                  reserve: int = DEFAULT_RESERVE) -> AutoSettings:
    """The cheapest ``ffn_chunks`` / offload / VAE tiling whose predicted peaks fit ``free_bytes``.

    Args:
        config / size / weights / dtype / upscale / images / audio / vae / vae_weights / reserve: as
            :func:`~.planner.plan_memory`; free_bytes: the device's free memory (None: unlimited, e.g. the CPU);
        weights_loaded: the transformer's weights are already on the device (a ComfyUI MODEL after loading), so
            ``free_bytes`` is what is left besides them: only the stage tensors and activations are planned and
            offload stays off; ffn_chunks / offload: fixed by the user instead of chosen.

    Returns:
        The :class:`AutoSettings`; when even the most frugal settings do not fit, those (``fits`` False) — the CLI
        refuses the run with :func:`~.planner.require_fit`, the nodes try it anyway.
    """
    if weights_loaded:
        weights, offload = TransformerWeights((), 0, weights.largest_quantised if weights else 0), False
    plan = plan_memory(config, size, free_bytes, weights=weights, dtype=dtype, upscale=upscale, images=images,
                       audio=audio, vae=vae, vae_weights=vae_weights, ffn_chunks=ffn_chunks, offload=offload,
                       reserve=reserve)
    return AutoSettings(plan.ffn_chunks, plan.offload, plan.tiling, plan)


def device_free_bytes(device: torch.device | str) -> int | None:
    """Free memory of a CUDA device in bytes (the driver's free memory + what PyTorch's cache holds unused); None for
    any other device (the CPU: treated as unlimited)."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
