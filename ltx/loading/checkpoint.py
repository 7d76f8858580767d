"""Open an LTX-2 / LTX-2.3 checkpoint and load its transformer and text connectors.

Accepted files: the official single files (``ltx-2-19b-*.safetensors``, ``ltx-2.3-22b-*.safetensors``; config from
``__metadata__["config"]``) and transformer-only files such as ComfyUI's split diffusion-model files, with or
without the ``model.diffusion_model.`` prefix (config inferred from names and shapes when there is no metadata).
``.gguf`` files are accepted the same way (``gguf_checkpoint.py``); their quantised Linear weights stay quantised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..config import TransformerConfig, Version
from ..errors import CheckpointError, ConfigError
from ..text.processor import TextConnectors
from ..transformer.model import LTXAVTransformer
from .gguf_checkpoint import GGUFCheckpointFile, materialize_gguf
from .infer import infer_connector, infer_gemma_states, infer_transformer
from .layout import check_is_ltx2, detect_version, split_components
from .materialize import materialize
from .safetensors_file import SafetensorsFile, TensorInfo


@dataclass(frozen=True)
class LTXCheckpoint:
    """A validated checkpoint file: its components (module name → file key), config and where the config came from."""

    file: SafetensorsFile
    components: dict[str, dict[str, str]]
    config: TransformerConfig
    config_source: str  # "metadata", "inferred" or "given"
    version: Version

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def model_version(self) -> str | None:
        return self.file.metadata.get("model_version")

    def infos(self, component: str) -> dict[str, TensorInfo]:
        return {name: self.file.tensors[key] for name, key in self.components.get(component, {}).items()}


def open_checkpoint(path: str | os.PathLike, config: TransformerConfig | dict | None = None) -> LTXCheckpoint:
    """Validate ``path`` and work out the transformer config (given → metadata → inferred from shapes)."""
    path = Path(path)
    file = GGUFCheckpointFile(path) if path.suffix.lower() == ".gguf" else SafetensorsFile(path)
    check_is_ltx2(path.name, file.tensors)
    components = split_components(file.tensors)
    infos = {c: {n: file.tensors[k] for n, k in names.items()} for c, names in components.items()}
    connectors = {c: infos[c] for c in ("video_connector", "audio_connector") if c in infos}
    version = detect_version(components["transformer"])

    if isinstance(config, TransformerConfig):
        cfg, source = config, "given"
    else:
        raw = config if isinstance(config, dict) else (file.config() or {}).get("transformer")
        source = "given" if isinstance(config, dict) else "metadata"
        if raw is None:
            cfg, source = infer_transformer(infos["transformer"], connectors, infos.get("text_projection")), "inferred"
        else:
            try:
                cfg = TransformerConfig.from_dict(raw)
            except ConfigError as exc:
                raise CheckpointError(f"{path.name}: {exc}") from exc
            # ltx-core ignores the connectors' register count in the config; the tensors are the truth.
            for name in connectors:
                conn = getattr(cfg, name)
                if "connector_num_layers" not in raw:
                    conn = infer_connector(connectors[name], conn)
                registers = connectors[name]["learnable_registers"].shape[0]
                cfg = replace(cfg, **{name: replace(conn, num_learnable_registers=registers)})
    if cfg.version is not version:
        raise CheckpointError(f"{path.name}: the config describes an LTX-{cfg.version.value} transformer but the "
                              f"tensors are LTX-{version.value}. Pass a matching config or none.")
    return LTXCheckpoint(file=file, components=components, config=cfg, config_source=source, version=version)


def _as_checkpoint(source: str | os.PathLike | LTXCheckpoint) -> LTXCheckpoint:
    return source if isinstance(source, LTXCheckpoint) else open_checkpoint(source)


def _materializer(ckpt: LTXCheckpoint):
    """GGUF files keep quantised Linear weights quantised (GGUFLinear); safetensors load plain tensors."""
    return materialize_gguf if isinstance(ckpt.file, GGUFCheckpointFile) else materialize


def load_transformer(
    source: str | os.PathLike | LTXCheckpoint,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
) -> LTXAVTransformer:
    """Load the audio-video transformer in ``dtype`` (None: as stored) on ``device``."""
    ckpt = _as_checkpoint(source)
    return _materializer(ckpt)(lambda: LTXAVTransformer(ckpt.config), ckpt.file, ckpt.components["transformer"],
                       what="transformer", dtype=dtype, device=torch.device(device))


def load_text_connectors(
    source: str | os.PathLike | LTXCheckpoint,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
) -> TextConnectors:
    """Load the feature extractor and both embeddings connectors (needs ``text_embedding_projection.*`` and the
    connector tensors; ComfyUI keeps the projection in its text-encoder file, see the text encoder loaders)."""
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
    return _materializer(ckpt)(lambda: TextConnectors(ckpt.config, states), ckpt.file, names, what="text connectors",
                       dtype=dtype, device=torch.device(device))
