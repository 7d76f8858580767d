"""Memory planner: predicted peak device memory per stage, and ``ffn_chunks`` / offload / VAE tiling chosen to fit
a budget (``python -m rs_ltxv plan``). See :mod:`.planner` (:mod:`.diffusion_decode` for LTX-2.5's diffusion
decoder); :mod:`.measure` measures live-tensor peaks."""

from ..pipeline.latents import VideoSize
from .activations import StageTokens, forward_phases
from .auto import AUTO, AUTO_FFN_CHUNKS, AutoSettings, auto_settings, device_free_bytes
from .budget import format_bytes, parse_memory_size
from .diffusion_decode import DiffusionDecodePeak, diffusion_decode_peak
from .planner import MemoryPlan, StagePlan, max_frames, min_budget, plan_memory, require_fit
from .weights import TransformerWeights, weights_from_config, weights_from_infos

__all__ = [
    "AUTO",
    "AUTO_FFN_CHUNKS",
    "AutoSettings",
    "DiffusionDecodePeak",
    "MemoryPlan",
    "StagePlan",
    "StageTokens",
    "TransformerWeights",
    "VideoSize",
    "auto_settings",
    "device_free_bytes",
    "diffusion_decode_peak",
    "format_bytes",
    "forward_phases",
    "max_frames",
    "min_budget",
    "parse_memory_size",
    "plan_memory",
    "require_fit",
    "weights_from_config",
    "weights_from_infos",
]
