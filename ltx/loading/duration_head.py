"""Load the LTX-2.5 duration head: the ``duration_head.*`` tensors of a file (its own,
``ltx-2.5-duration-head-bf16.safetensors``, or a checkpoint that carries them), the prefix stripped.

Config, as ``ltx_core.duration_head.model_configurator.DurationHeadConfigurator`` reads the metadata: the input
widths from ``config["transformer"]["cross_attention_dim"]`` / ``["audio_cross_attention_dim"]``, the rest from
``config["duration_head"]`` (``pooler_hidden_dim``, ``num_queries``, ``num_pooler_heads``, ``mlp_hidden``). A key the
metadata does not give is read from the tensor shapes (ltx-core takes the released defaults, which the released file's
shapes equal), ``num_pooler_heads`` — which shapes cannot tell — defaults to 4.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..duration_head import DurationHead, DurationHeadConfig
from ..errors import CheckpointError, ConfigError
from .config_limits import check_int
from .materialize import materialize
from .resolve import resolve_config
from .safetensors_file import SafetensorsFile
from .source import TensorInfo

PREFIX = "duration_head."
_NO_HEAD = ("Predicting the clip length (num_frames = 0 on the nodes, --frames auto on the CLI) needs an LTX-2.5 "
            "duration head: ltx-2.5-duration-head-bf16.safetensors (Lightricks/LTX-2.5, model_patches/) or a 2.5 "
            "checkpoint that carries duration_head.* tensors. Otherwise give the frame count.")
#: metadata section → {key in that section: config field}
_METADATA_KEYS: dict[str, dict[str, str]] = {
    "transformer": {"cross_attention_dim": "video_cross_attention_dim",
                    "audio_cross_attention_dim": "audio_cross_attention_dim"},
    "duration_head": {k: k for k in ("pooler_hidden_dim", "num_queries", "num_pooler_heads", "mlp_hidden")},
}


def duration_head_names(keys: Any) -> dict[str, str]:
    """``{module name: file key}`` of the ``duration_head.*`` keys among ``keys`` (empty when there are none)."""
    return {k[len(PREFIX):]: k for k in keys if k.startswith(PREFIX)}


def has_duration_head(path: str | os.PathLike) -> bool:
    """Whether the ``.safetensors`` file at ``path`` holds ``duration_head.*`` tensors (reads the header only).

    Raises:
        CheckpointError: the file is missing or not a readable ``.safetensors`` file.
    """
    return bool(duration_head_names(SafetensorsFile(path).tensors))


def _shape_fields(tensors: Mapping[str, TensorInfo]) -> dict[str, int]:
    """The config fields the tensor shapes give (``num_pooler_heads``: the released 4)."""
    need = ("video_input_proj.weight", "audio_input_proj.weight", "attention_pooler.query_tokens",
            "mlp_hidden.weight")
    bad = [k for k in need if k not in tensors or len(tensors[k].shape) != 2]
    if bad:
        raise CheckpointError(f"The duration head lacks 2-D tensors {', '.join(PREFIX + k for k in bad)}; the file "
                              "is incomplete or not an LTX-2.5 duration head.")
    (pooler, video), (_, audio) = tensors[need[0]].shape, tensors[need[1]].shape
    return dict(video_cross_attention_dim=video, audio_cross_attention_dim=audio, pooler_hidden_dim=pooler,
                num_queries=tensors[need[2]].shape[0], num_pooler_heads=4, mlp_hidden=tensors[need[3]].shape[0])


def infer_duration_head_config(tensors: Mapping[str, TensorInfo]) -> DurationHeadConfig:
    """A :class:`DurationHeadConfig` from the shapes of the head's tensors (module names, prefix stripped):
    ``video_input_proj.weight`` ``(P, D_v)``, ``audio_input_proj.weight`` ``(P, D_a)``,
    ``attention_pooler.query_tokens`` ``(Q, P)``, ``mlp_hidden.weight`` ``(M, Q·P)``; ``num_pooler_heads`` 4 (the
    released value; shapes cannot tell it). ltx-core has no inference
    (``ltx_core.duration_head.model_configurator.DurationHeadConfigurator`` reads the metadata with defaults).

    Raises:
        CheckpointError: one of these tensors is missing or not 2-D, or the widths make no config (a pooler width
            that 4 heads do not divide needs the ``config["duration_head"]["num_pooler_heads"]`` metadata).
    """
    try:
        return DurationHeadConfig(**_shape_fields(tensors))
    except ConfigError as exc:
        raise CheckpointError(f"The duration head's tensor shapes make no config with the default 4 pooler heads "
                              f"({exc}); the file needs its config metadata.") from None


def config_from_metadata(config: Mapping[str, Any], base: Mapping[str, int]) -> DurationHeadConfig:
    """The config from ``base`` (field → value; :class:`DurationHeadConfig`'s defaults when empty) with the values
    the file's ``config`` metadata gives (module docstring; unknown keys ignored).

    Raises:
        ConfigError: a section that is not a JSON object, a value that is not a plausible positive integer, or
            widths that make no config (:class:`DurationHeadConfig`).
    """
    updates: dict[str, int] = {}
    for section, keys in _METADATA_KEYS.items():
        raw = config.get(section)
        if raw is None:
            continue
        if not isinstance(raw, Mapping):
            raise ConfigError(f"config[{section!r}] must be a JSON object, got {type(raw).__name__}.")
        for key, field in keys.items():
            if key in raw:
                check_int(f"config[{section!r}]", key, raw[key])
                updates[field] = raw[key]
    return DurationHeadConfig(**{**base, **updates})


def load_duration_head(path: str | os.PathLike, *, config: DurationHeadConfig | Mapping[str, Any] | None = None,
                       dtype: torch.dtype | None = None, device: str | torch.device = "cpu") -> DurationHead:
    """Load the duration head of the file at ``path`` in ``dtype`` (None: as stored) on ``device``. ``config`` (a
    :class:`DurationHeadConfig` or a metadata-style ``{"transformer": …, "duration_head": …}`` dict) replaces the
    file's metadata.

    Mirrors ``ltx_pipelines.utils.blocks.DurationPredictor.from_checkpoint`` (``DurationHeadConfigurator`` +
    ``DURATION_HEAD_KEY_OPS``), which returns None for a file without the head where this raises.

    Raises:
        CheckpointError: the file is missing or unreadable; it has no ``duration_head.*`` tensors (the message says
            that automatic frame counts need an LTX-2.5 duration head); the config is invalid or does not describe
            the tensors.
    """
    path = Path(path)
    file = SafetensorsFile(path)
    names = duration_head_names(file.tensors)
    if not names:
        raise CheckpointError(f"{path.name} has no duration head (no '{PREFIX}*' tensors). {_NO_HEAD}")
    tensors = {module: file.tensors[key] for module, key in names.items()}

    def parse(raw: Mapping[str, Any]) -> DurationHeadConfig:
        return config_from_metadata(raw, _shape_fields(tensors))

    cfg = resolve_config(path.name, config, file.config, key=None, config_type=DurationHeadConfig, parse=parse,
                         infer=lambda: infer_duration_head_config(tensors)).config
    return materialize(lambda: DurationHead(cfg), file, names, what="duration head", dtype=dtype, device=device,
                       config_name=f"duration head config ({', '.join(f'{k}={v}' for k, v in asdict(cfg).items())})")
