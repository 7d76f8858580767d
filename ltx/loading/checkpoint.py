"""Open an LTX-2 / LTX-2.3 / LTX-2.5 checkpoint and load its transformer and text connectors.

Accepted files: the official single files (``ltx-2-19b-*.safetensors``, ``ltx-2.3-22b-*.safetensors``,
``ltx-2.5-22b-*.safetensors``; config from
``__metadata__["config"]``) and transformer-only files such as ComfyUI's split diffusion-model files, with or
without the ``model.diffusion_model.`` prefix (config inferred from names and shapes when there is no metadata).
``.gguf`` files are accepted the same way (``gguf_checkpoint.py``); their quantised Linear weights stay quantised, as do
FP8 / INT8 / NVFP4 weights of ``.safetensors`` files (official FP8, ComfyUI ``scaled_fp8`` and ``comfy_quant``:
``quant_plan.py``, ``ltx.quant``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..config import TransformerConfig, Version
from ..errors import CheckpointError
from ..text.processor import TextConnectors
from ..transformer.model import LTXAVTransformer
from .gguf_checkpoint import GGUFCheckpointFile
from .infer import infer_connector, infer_gemma_states, infer_transformer, shape_of
from .layout import (
    KEYFRAME_EMBEDDING,
    ModelVersion,
    check_is_ltx2,
    detect_version,
    read_model_version,
    split_components,
    video_ff_bias_absent,
)
from .materialize import materialize
from .quant_plan import logical_infos, plan_quantised
from .resolve import ConfigSource, resolve_config
from .safetensors_file import SafetensorsFile
from .source import TensorInfo

#: file suffix → the :class:`~.source.TensorSource` that opens it (anything else: safetensors)
FILE_KINDS: dict[str, type[SafetensorsFile] | type[GGUFCheckpointFile]] = {".gguf": GGUFCheckpointFile}


def open_file(path: Path) -> SafetensorsFile | GGUFCheckpointFile:
    """The checked tensor source of an LTX-2 file, chosen by suffix (:data:`FILE_KINDS`).

    Raises:
        CheckpointError: the file is missing, truncated or unreadable.
    """
    return FILE_KINDS.get(path.suffix.lower(), SafetensorsFile)(path)


def is_distilled(name: str | os.PathLike, model_version: str | None = None) -> bool:
    """Whether a checkpoint is a distilled one (8-step schedule), guessed from its file name and ``model_version``
    metadata: "distilled" in either, as in ``ltx-2.3-22b-distilled.safetensors`` or ``2.3.0-distilled``. Only the
    file name of a path counts. False for a dev checkpoint with the distilled LoRA (pass the distilled sigmas then).
    ltx-core has no such guess: the user picks ``ltx_pipelines.distilled.DistilledPipeline`` by hand."""
    return "distilled" in f"{Path(name).name} {model_version or ''}".lower()


@dataclass(frozen=True)
class LTXCheckpoint:
    """A validated checkpoint file: its components (module name → file key), config and where the config came from."""

    file: SafetensorsFile | GGUFCheckpointFile
    components: dict[str, dict[str, str]]
    config: TransformerConfig
    config_source: ConfigSource
    version: Version

    @property
    def path(self) -> Path:
        """The file's path."""
        return self.file.path

    @property
    def model_version(self) -> str | None:
        """The ``model_version`` metadata ("2.3.0", "2.3.0-distilled" …), None when the file has none."""
        return self.file.metadata.get("model_version")

    @property
    def model_version_info(self) -> ModelVersion:
        """:func:`~.layout.read_model_version` of the file: ``model_version`` and the Gemma version it expects.

        Raises:
            CheckpointError: a malformed ``gemma_source_checkpoint`` entry.
        """
        return read_model_version(self.file.metadata)

    @property
    def is_distilled(self) -> bool:
        """:func:`is_distilled` of the file name and ``model_version`` metadata."""
        return is_distilled(self.path, self.model_version)

    def infos(self, component: str) -> dict[str, TensorInfo]:
        """Module name → :class:`~.source.TensorInfo` (stored dtype, shape) of ``component``'s tensors (a key of
        :attr:`components`: "transformer", "text_projection", "video_connector" …); empty when the file lacks it."""
        return logical_infos({name: self.file.tensors[key] for name, key in self.components.get(component, {}).items()})


def _with_connectors(raw: Mapping[str, Any], connectors: dict[str, dict[str, TensorInfo]]) -> TransformerConfig:
    """A stored or given transformer config; the connectors' geometry comes from their tensors' shapes where
    ltx-core ignores the config (the register count always, the layers when ``connector_num_layers`` is absent).

    Raises:
        ConfigError: see ``TransformerConfig.from_dict``.
        CheckpointError: a connector without a 2-D ``learnable_registers`` tensor.
    """
    cfg = TransformerConfig.from_dict(dict(raw))
    for name in connectors:
        conn = getattr(cfg, name)
        if "connector_num_layers" not in raw:
            conn = infer_connector(connectors[name], conn)
        registers = shape_of({k: v.shape for k, v in connectors[name].items()}, "learnable_registers", 2,
                             name.replace("_", " "))[0]
        cfg = replace(cfg, **{name: replace(conn, num_learnable_registers=registers)})
    return cfg


def check_keyframe_embedding(name: str, transformer: Mapping[str, str], cfg: TransformerConfig,
                             stamp: ModelVersion) -> None:
    """An LTX-2.5 transformer must hold ``keyframes_abs_pos_embedding``: refuse a file that is 2.5 by its config
    (``use_keyframes_abs_pos_embedding`` or ``ff_bias`` false), its ``model_version`` (2.5 or later) or its tensors
    (video feed-forward without biases) but lacks it. ltx-core 1.2.0 would leave the parameter on the meta device
    and fail at the first step; diffusers would load it as zeros.

    Raises:
        CheckpointError: the tensor is missing; the message names it and the reason the file counts as LTX-2.5.
    """
    if KEYFRAME_EMBEDDING in transformer:
        return
    reasons = []
    if cfg.use_keyframes_abs_pos_embedding:
        reasons.append("its config sets use_keyframes_abs_pos_embedding")
    if stamp.is_ltx25:
        reasons.append(f"its model_version is {stamp.model_version}")
    if not cfg.ff_bias or video_ff_bias_absent(transformer):
        reasons.append("its video feed-forward has no biases")
    if reasons:
        raise CheckpointError(
            f"{name} is an LTX-2.5 checkpoint ({'; '.join(reasons)}) but has no '{KEYFRAME_EMBEDDING}' tensor "
            f"([1, {cfg.inner_dim}], model.diffusion_model.{KEYFRAME_EMBEDDING} in official files). The file is "
            "incomplete or was converted by a tool that dropped it; download the official file or convert it again.")


def open_checkpoint(path: str | os.PathLike, config: TransformerConfig | dict | None = None) -> LTXCheckpoint:
    """Validate ``path`` (``.safetensors`` or ``.gguf``) and work out the transformer config: ``config`` when given
    (a :class:`TransformerConfig` or its dict), else ``__metadata__["config"]["transformer"]``, else inferred from
    tensor names and shapes (:func:`~.resolve.resolve_config`).

    Mirrors ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder.model_config`` with
    ``ltx_core.model.transformer.model_configurator.LTXV_MODEL_COMFY_RENAMING_MAP`` (the ``model.diffusion_model.``
    prefix), plus the inference ltx-core does not have.

    Raises:
        CheckpointError: the file is missing, truncated, not LTX-2 / 2.3 / 2.5, or its config is invalid, cannot be
            inferred, or describes another LTX version; an LTX-2.5 file without ``keyframes_abs_pos_embedding``
            (:func:`check_keyframe_embedding`).
    """
    path = Path(path)
    file = open_file(path)
    check_is_ltx2(path.name, file.tensors)
    components = split_components(file.tensors)
    infos = {c: logical_infos({n: file.tensors[k] for n, k in names.items()}) for c, names in components.items()}
    connectors = {c: infos[c] for c in ("video_connector", "audio_connector") if c in infos}
    version = detect_version(components["transformer"])
    resolved = resolve_config(
        path.name, config, file.config, key="transformer", config_type=TransformerConfig,
        parse=lambda raw: _with_connectors(raw, connectors),
        infer=lambda: infer_transformer(infos["transformer"], connectors, infos.get("text_projection")))
    cfg = resolved.config
    stated = file.metadata.get("model_version")  # the Gemma entry is not needed here: B's loaders check it
    check_keyframe_embedding(path.name, components["transformer"], cfg,
                             ModelVersion(None if stated is None else str(stated), None))
    if cfg.version is not version:
        raise CheckpointError(f"{path.name}: the config describes an LTX-{cfg.version.value} transformer but the "
                              f"tensors are LTX-{version.value}. Pass a matching config or none.")
    return LTXCheckpoint(file=file, components=components, config=cfg, config_source=resolved.source,
                         version=version)


def _as_checkpoint(source: str | os.PathLike | LTXCheckpoint) -> LTXCheckpoint:
    return source if isinstance(source, LTXCheckpoint) else open_checkpoint(source)


def load_transformer(
    source: str | os.PathLike | LTXCheckpoint,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
) -> LTXAVTransformer:
    """Load the audio-video transformer in ``dtype`` (None: as stored) on ``device`` from a path or an opened
    :class:`LTXCheckpoint`. Quantised Linear weights stay quantised (``GGUFLinear`` for GGUF, ``QuantLinear`` for FP8 /
    INT8 / NVFP4).

    Mirrors ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder.build`` with
    ``ltx_core.model.transformer.model_configurator.LTXModelConfigurator``.

    Raises:
        CheckpointError: see :func:`open_checkpoint`; the tensors do not match the config; a tensor cannot be read.
    """
    ckpt = _as_checkpoint(source)
    return materialize(lambda: LTXAVTransformer(ckpt.config), ckpt.file, ckpt.components["transformer"],
                       what="transformer", dtype=dtype, device=device)


def check_quantisation(source: str | os.PathLike | LTXCheckpoint) -> None:
    """The loaders' check of the quantised layers (:func:`~.quant_plan.plan_quantised`: known ``comfy_quant``
    formats, valid descriptions, every scale present, stored shapes that fit) on the transformer and, when the file
    holds them, the text connectors, built on the meta device: no weight is read (only ``comfy_quant`` bytes). What
    ``plan`` and ``info`` run, so they refuse the files ``generate`` refuses.

    Raises:
        CheckpointError: as :func:`~.quant_plan.plan_quantised`.
    """
    ckpt = _as_checkpoint(source)
    with torch.device("meta"):
        model = LTXAVTransformer(ckpt.config)
    plan_quantised(model, ckpt.file, ckpt.components["transformer"])
    if all(c in ckpt.components for c in ("text_projection", "video_connector", "audio_connector")):
        states = infer_gemma_states(ckpt.infos("text_projection"), ckpt.config.caption_channels)
        names = {f"feature_extractor.{k}": v for k, v in ckpt.components["text_projection"].items()}
        for comp in ("video_connector", "audio_connector"):
            names.update({f"{comp}.{k}": v for k, v in ckpt.components[comp].items()})
        with torch.device("meta"):
            connectors = TextConnectors(ckpt.config, states)
        plan_quantised(connectors, ckpt.file, names)


def load_text_connectors(
    source: str | os.PathLike | LTXCheckpoint,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
) -> TextConnectors:
    """Load the feature extractor and both embeddings connectors (needs ``text_embedding_projection.*`` and the
    connector tensors; ComfyUI keeps the projection in its text-encoder file, see the text encoder loaders).

    Mirrors ``ltx_core.text_encoders.gemma.encoders.encoder_configurator.EmbeddingsProcessorConfigurator`` with
    ``EMBEDDINGS_PROCESSOR_KEY_OPS`` (same module) and
    ``ltx_core.text_encoders.gemma.embeddings_connector.Embeddings1DConnectorConfigurator``.

    Raises:
        CheckpointError: see :func:`open_checkpoint`; the file lacks the projection or a connector; the tensors do
            not match the config.
    """
    ckpt = _as_checkpoint(source)
    missing = [c for c in ("text_projection", "video_connector", "audio_connector") if c not in ckpt.components]
    if missing:
        raise CheckpointError(f"{ckpt.path.name} has no {', '.join(missing)} tensors; the text connectors live in "
                              "the official single-file checkpoint (or ComfyUI's text-encoder file).")
    projection = ckpt.infos("text_projection")
    states = infer_gemma_states(projection, ckpt.config.caption_channels)
    names = {f"feature_extractor.{k}": v for k, v in ckpt.components["text_projection"].items()}
    for comp in ("video_connector", "audio_connector"):
        names.update({f"{comp}.{k}": v for k, v in ckpt.components[comp].items()})
    return materialize(lambda: TextConnectors(ckpt.config, states), ckpt.file, names, what="text connectors",
                       dtype=dtype, device=device)
