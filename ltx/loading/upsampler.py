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

from ..errors import CheckpointError, InputError
from ..upsampler import LatentUpsampler, UpsamplerConfig
from .layout import FOREIGN_HINTS, count_blocks
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


#: the spatial ×2 upsampler released for each model generation (the 2× pass needs it)
SPATIAL_X2_FILES = {"2.0": "ltx-2-spatial-upscaler-x2-1.0.safetensors",
                    "2.3": "ltx-2.3-spatial-upscaler-x2-1.1.safetensors",
                    "2.5": "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors"}


def spatial_x2_file(version: object = None) -> str:
    """The released spatial ×2 upsampler file of a model ``version`` (a :class:`~rs_ltxv.ltx.config.Version` or
    ``"2.5"``…; the newest generation at or below it); with None, all of them in one phrase."""
    if version is None:
        return " / ".join(f"{name} ({'LTX-2' if gen == '2.0' else 'LTX-' + gen})"
                          for gen, name in reversed(SPATIAL_X2_FILES.items()))
    text = str(getattr(version, "value", version))
    best = "2.0"
    for gen in SPATIAL_X2_FILES:
        if _version_tuple(gen) <= _version_tuple(text):
            best = max(best, gen, key=_version_tuple)
    return SPATIAL_X2_FILES[best]


def _version_tuple(text: str) -> tuple[int, ...]:
    out = []
    for piece in text.replace("-", ".").split("."):
        if not piece.isdigit():
            break
        out.append(int(piece))
    return tuple(out)


def _not_an_upsampler(path: Path, file: SafetensorsFile, version: object = None) -> CheckpointError:
    """The error for a file without ``initial_conv.weight``: what it holds instead (header only), and the spatial ×2
    upsampler of the model ``version`` (None: the released ones)."""
    keys = list(file.tensors)
    hint = spatial_x2_file(version)
    if any(k.startswith(("model.diffusion_model.", "patchify_proj.")) for k in keys):
        return CheckpointError(f"{path.name} is an LTX model checkpoint, not a latent upsampler. Give a latent "
                               f"upsampler file: {hint}.")
    return CheckpointError(f"{path.name} is not a latent upsampler: {file_contents(keys)}, no '{_MARKER}'. Give a "
                           f"latent upsampler file: {hint}.")


def file_contents(keys: list[str]) -> str:
    """What a file whose tensors are named ``keys`` holds, in words for a message: ``it holds a video VAE``, ``it
    holds an LTX model checkpoint``, ``it looks like a Flux model``, ``it holds no LTX model part (first keys: …)``."""
    from .info import PART_KINDS

    if any(k.startswith(("model.diffusion_model.", "patchify_proj.")) for k in keys):
        return "it holds an LTX model checkpoint"
    holds = next((f"it holds {'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}" for name, test in PART_KINDS
                  if test(keys)), None)
    foreign = next((f"it looks like {what}" for needle, what in FOREIGN_HINTS if any(needle in k for k in keys)),
                   None)
    return holds or foreign or f"it holds no LTX model part (first keys: {', '.join(sorted(keys)[:4]) or 'none'})"


def _open_upsampler(path: Path, config: UpsamplerConfig | dict | None,
                    version: object = None) -> tuple[SafetensorsFile, UpsamplerConfig]:
    """The file and its config (``config``, the metadata, or inferred from the tensors); reads the header only."""
    file = SafetensorsFile(path)
    if _MARKER not in file.tensors:
        raise _not_an_upsampler(path, file, version)
    cfg = resolve_config(path.name, config, file.config, key=None, config_type=UpsamplerConfig,
                         parse=UpsamplerConfig.from_dict, infer=lambda: infer_upsampler_config(file.tensors)).config
    return file, cfg


def read_upsampler_config(path: str | os.PathLike, version: object = None) -> UpsamplerConfig:
    """The :class:`UpsamplerConfig` of the upsampler file at ``path`` (its metadata, else inferred from the tensor
    shapes), reading the header only; a message about a file that is no upsampler names the spatial ×2 one of the
    model ``version`` (:func:`spatial_x2_file`).

    Raises:
        CheckpointError: as :func:`load_upsampler`, before any weight is read.
    """
    return _open_upsampler(Path(path), None, version)[1]


def upsampler_kind(cfg: UpsamplerConfig) -> str:
    """``spatial ×2``, ``temporal ×2``, ``spatial ×1.5 + temporal ×2`` …: what an upsampler of ``cfg`` does."""
    parts = [f"spatial ×{cfg.spatial_scale:g}"] if cfg.spatial_upsample else []
    return " + ".join([*parts, *(["temporal ×2"] if cfg.temporal_upsample else [])])


def is_spatial_x2(cfg: UpsamplerConfig) -> bool:
    """Whether ``cfg`` is the spatial ×2 upsampler the 2× upscale pass runs: ``(B, C, F, H, W)`` →
    ``(B, C, F, 2H, 2W)``."""
    return cfg.spatial_upsample and not cfg.temporal_upsample and cfg.spatial_scale == 2.0


def check_spatial_x2(path: str | os.PathLike, version: object = None, flag: str = "") -> None:
    """Before any weight is read: the file at ``path`` is the spatial ×2 latent upsampler the 2× pass runs; the
    message names the one released for the model ``version`` (:func:`spatial_x2_file`).

    Raises:
        InputError: another kind of upsampler (temporal ×2, ×1.5 …).
        CheckpointError: not a latent upsampler (the message says what the file holds), unreadable, or a bad config.
    """
    try:
        cfg = read_upsampler_config(path, version)
    except CheckpointError as exc:
        if flag and str(exc).startswith(Path(path).name):
            raise CheckpointError(f"{flag} {exc}") from None
        raise
    if not is_spatial_x2(cfg):
        name = f"{flag} {Path(path).name}" if flag else Path(path).name
        raise InputError(f"{name} is the {upsampler_kind(cfg)} latent upsampler; the 2× upscale pass needs the "
                         f"spatial ×2 one: {spatial_x2_file(version)}.")


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
    file, cfg = _open_upsampler(Path(path), config)
    names = {k: k for k in file.tensors}
    return materialize(lambda: LatentUpsampler(cfg), file, names, what="latent upsampler", dtype=dtype,
                       device=device)
