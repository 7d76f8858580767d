"""Load a standalone latent upsampler file (``ltx-2-spatial-upscaler-x2-*.safetensors``,
``ltx-2.3-spatial-upscaler-x1.5-*``, ``ltx-2.3-temporal-upscaler-x2-*``, ``ltx-2.5-latent-spatial-upscaler-x2-*``,
``ltx-2.5-latent-temporal-upscaler-x2-*`` …): tensors without prefix, config in ``__metadata__["config"]`` (flat keys,
as ``ltx_core.model.upsampler.model_configurator.LatentUpsamplerConfigurator`` reads them).
Without metadata the config is inferred from names and shapes; a
pixel-shuffle factor of 3 is read as the released ×1.5 (a ×0.75 model would need its config).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..upsampler import LatentUpsampler, UpsamplerConfig
from .layout import check_is_ltx2, count_blocks
from .materialize import materialize
from .resolve import resolve_config
from .safetensors_file import SafetensorsFile
from .source import TensorInfo

_MARKER = "initial_conv.weight"
_SCALE_FOR_SHUFFLE = {2: 2.0, 3: 1.5, 4: 4.0}


def infer_upsampler_config(tensors: dict[str, TensorInfo]) -> UpsamplerConfig:
    """An :class:`UpsamplerConfig` matching the names and shapes of an upsampler's tensors: channels and dims
    from ``initial_conv.weight`` ``(mid, C_in, k, k[, k])``, the scale from the first upsampling conv. ltx-core has no
    inference (``ltx_core.model.upsampler.model_configurator.LatentUpsamplerConfigurator`` reads the config).

    Raises:
        CheckpointError: an ``initial_conv`` that is not a 2-D / 3-D convolution, an upsampling stage of an unknown
            kind (the file then needs its config metadata).
    """
    s = {k: v.shape for k, v in tensors.items()}
    if len(s[_MARKER]) not in (4, 5) or min(s[_MARKER]) < 1:
        raise CheckpointError(f"The latent upsampler's '{_MARKER}' has shape {list(s[_MARKER])}, not a 2-D or 3-D "
                              "convolution's. The file is corrupt.")
    mid, in_ch = s[_MARKER][:2]
    dims = len(s[_MARKER]) - 2
    kw: dict = dict(in_channels=in_ch, mid_channels=mid, dims=dims, num_blocks_per_stage=count_blocks(s, "res_blocks"))
    stage = next((s[k] for k in ("upsampler.conv.weight", "upsampler.0.weight") if k in s), (1,))
    if not stage:
        raise CheckpointError("The latent upsampler's upsampling convolution has an empty shape. The file is corrupt.")
    if "upsampler.conv.weight" in s:
        shuffle = round((s["upsampler.conv.weight"][0] // mid) ** 0.5)
        if shuffle not in _SCALE_FOR_SHUFFLE:
            raise CheckpointError(f"Unknown rational upsampler with a pixel-shuffle factor of {shuffle}; the "
                                  "file needs its config metadata.")
        kw.update(rational_resampler=True, spatial_scale=_SCALE_FOR_SHUFFLE[shuffle])
    elif "upsampler.0.weight" in s:
        w = s["upsampler.0.weight"]
        factor = w[0] // mid
        if len(w) == 5:  # Conv3d: 2 = temporal, 8 = temporal + spatial
            kw.update(temporal_upsample=True, spatial_upsample=factor == 8)
        elif factor != 4:
            raise CheckpointError(f"Unknown spatial upsampler stage ({factor}× channels); the file needs its config.")
    else:
        raise CheckpointError("The latent upsampler has neither 'upsampler.conv.weight' nor 'upsampler.0.weight'.")
    return UpsamplerConfig(**kw)


def load_upsampler(path: str | os.PathLike, *, config: UpsamplerConfig | dict | None = None,
                   dtype: torch.dtype | None = None, device: str | torch.device = "cpu") -> LatentUpsampler:
    """Load a latent upsampler file in ``dtype`` (None: as stored) on ``device``. ``config`` (an
    :class:`UpsamplerConfig` or its dict) overrides the metadata; without either it is inferred from the tensors.

    Mirrors ``ltx_core.model.upsampler.model_configurator.LatentUpsamplerConfigurator`` built by
    ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder``.

    Raises:
        CheckpointError: the file is missing, truncated or not a latent upsampler (the message says what it is);
            the config is invalid or cannot be inferred; the tensors do not match it.
    """
    path = Path(path)
    file = SafetensorsFile(path)
    if _MARKER not in file.tensors:
        keys = list(file.tensors)
        if any(k.startswith(("model.diffusion_model.", "vae.", "audio_vae.")) for k in keys):
            raise CheckpointError(f"{path.name} is an LTX-2 model checkpoint, not a latent upsampler. Upsampler files "
                                  "are named like ltx-2-spatial-upscaler-x2-*.safetensors.")
        try:
            check_is_ltx2(path.name, keys)
        except CheckpointError as exc:
            raise CheckpointError(f"{path.name} is not a latent upsampler (no '{_MARKER}'). {exc}") from None
        raise CheckpointError(f"{path.name} is not a latent upsampler (no '{_MARKER}').")
    cfg = resolve_config(path.name, config, file.config, key=None, config_type=UpsamplerConfig,
                         parse=UpsamplerConfig.from_dict, infer=lambda: infer_upsampler_config(file.tensors)).config
    names = {k: k for k in file.tensors}
    return materialize(lambda: LatentUpsampler(cfg), file, names, what="latent upsampler", dtype=dtype,
                       device=device)
