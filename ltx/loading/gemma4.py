"""Load LTX-2.5's Gemma-4 text encoder: the bundled single file or a Hugging Face folder.

The bundled file (``gemma4-12b-with-proj-ltx-2.5-{bf16,comfy-int8-convrot}.safetensors``, written by ltx-core
1.2.0's ``ltx_core.text_encoders.gemma.gemma_assets.build_text_encoder_tensors_from_gemma_root``) holds:

==================================  ============================================================================
``__metadata__["gemma_config"]``    the Hugging Face ``gemma4_unified`` config as JSON (``gemma_version`` on top)
``model.layers.*``,                 the language model, ComfyUI-flat (``model.language_model.*`` in files that
``model.embed_tokens.*``,           kept Hugging Face names); no LM head (tied to the embeddings)
``model.norm.*``
``tokenizer_json``                  uint8 bytes of the Hugging Face ``tokenizer.json``
``hf_asset__<name>``                uint8 bytes of the sidecars (``tokenizer_config.json``, ``processor_config.json``
                                    …; older packs keep the small ones as metadata strings)
``text_embedding_projection.*``     the feature extractor of LTX-2.5 (``{video,audio}_aggregate_embed``)
``vision_model.*``, ``audio_*``,    the multimodal embedders (ignored: the prompt path is text only)
``multi_modal_projector.*``
==================================  ============================================================================

A folder holds ``config.json`` + ``tokenizer.json`` (+ ``tokenizer_config.json``) + ``model*.safetensors``
(``model.language_model.*``), and may hold the projection in any of its ``.safetensors`` files. ComfyUI's quantised
files keep their decoder layers' Linear weights quantised (``comfy_quant`` + ``weight_scale``, e.g. int8 ConvRot):
they load as ``QuantLinear`` through the same path as Gemma-3 files (:class:`~.gemma_tensors.GemmaTensors`).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError
from ..text.gemma4 import Gemma4TextModel
from ..text.gemma4_config import Gemma4Config
from ..text.gemma4_tokenizer import Gemma4Tokenizer
from .config_json import parse_config_text, read_config_file
from .config_limits import check_config, check_int
from .gemma_tensors import GemmaTensors
from .materialize import materialize
from .safetensors_file import SafetensorsFile
from .source import as_source

GEMMA_CONFIG_KEY = "gemma_config"
TOKENIZER_KEY = "tokenizer_json"
ASSET_PREFIX = "hf_asset__"
PROJECTION_PREFIX = "text_embedding_projection."
#: file-key prefixes of the language model (ComfyUI-flat, then Hugging Face)
LM_PREFIXES = ("model.layers.", "model.embed_tokens.", "model.norm.", "model.language_model.")
_SUFFIXES = (".safetensors", ".sft")
_FIX = ("Use the bundled LTX-2.5 text encoder gemma4-12b-with-proj-ltx-2.5-bf16.safetensors (or its "
        "comfy-int8-convrot version), downloaded again if it is damaged.")


@dataclass(frozen=True)
class Gemma4Bundle:
    """A Gemma-4 text encoder described, no weight read: its config, the language model's tensors (under
    ``Gemma4UnifiedTextModel`` names), where the tokenizer lies and the projection tensors it carries.

    Attributes:
        name: the file or folder name, for messages.
        config: the model config (from ``gemma_config`` metadata or ``config.json``).
        weights: the language model's tensors (:class:`~.gemma_tensors.GemmaTensors`).
        tokenizer: the single file holding ``tokenizer_json`` or the folder's ``tokenizer.json`` path.
        projection: ``(file, {module name: file key})`` of ``text_embedding_projection.*``, or None.
    """

    name: str
    config: Gemma4Config
    weights: GemmaTensors
    tokenizer: SafetensorsFile | Path
    projection: tuple[SafetensorsFile, dict[str, str]] | None


def _model_type(cfg: Any) -> str:
    return str(cfg.get("model_type", "")) if isinstance(cfg, dict) else ""


def _is_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in _SUFFIXES


def is_gemma4(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a Gemma-4 text encoder, told from its header or ``config.json`` alone: a safetensors file
    whose ``gemma_config`` names a ``gemma4*`` model, or that carries ``tokenizer_json`` / ``layer_scalar`` tensors
    without a Gemma-3 config; a folder whose ``config.json`` names a ``gemma4*`` model.

    Raises:
        CheckpointError: the file's header is unreadable or truncated (:class:`~.safetensors_file.SafetensorsFile`).
    """
    path = Path(path)
    if path.is_dir():
        config = path / "config.json"
        return config.is_file() and _model_type(read_config_file(config)).startswith("gemma4")
    if not _is_file(path):
        return False
    f = SafetensorsFile(path)
    raw = f.metadata.get(GEMMA_CONFIG_KEY)
    if raw is not None:
        try:
            return not _model_type(parse_config_text(f.name, raw)).startswith("gemma3")
        except CheckpointError:
            return True  # a bundle with a broken config: open_gemma4 says what is wrong
    return TOKENIZER_KEY in f.tensors or any(k.endswith(".layer_scalar") for k in f.tensors)


def _lm_view(f: SafetensorsFile) -> SafetensorsFile:
    """``f`` with only its language-model tensors listed (towers, projection, tokenizer and sidecars left out)."""
    view = copy.copy(f)
    view.tensors = {k: v for k, v in f.tensors.items() if k.startswith(LM_PREFIXES)}
    return view


def _projection(files: list[SafetensorsFile]) -> tuple[SafetensorsFile, dict[str, str]] | None:
    for f in files:
        names = {k[len(PROJECTION_PREFIX):]: k for k in f.tensors if k.startswith(PROJECTION_PREFIX)}
        if names:
            return f, names
    return None


def parse_gemma4_config(where: str, raw: dict[str, Any]) -> Gemma4Config:
    """A :class:`Gemma4Config` from a Hugging Face config dict, with every field checked against the loaders'
    plausible ranges (:func:`~.config_limits.check_config`).

    Raises:
        CheckpointError: not a ``gemma4_unified`` config, an option RS-LTXV does not implement, or a value out of
            range; the message starts with ``where``.
    """
    try:
        config = Gemma4Config.from_hf_dict(raw)
        check_config(where, replace(config, multimodal_token_ids=()))
        for i, token in enumerate(config.multimodal_token_ids):
            check_int(where, f"multimodal_token_ids[{i}]", token, "vocab_size")
    except ConfigError as exc:
        raise CheckpointError(f"{where}: {exc}") from exc
    return config


def _folder_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_config_file(index).get("weight_map")
        shards = sorted(set(weight_map.values())) if isinstance(weight_map, dict) else []
        if not shards or not all(isinstance(s, str) and Path(s).name == s for s in shards):
            raise CheckpointError(f"{index} is not a valid safetensors index ('weight_map' → shard file names).")
        absent = [s for s in shards if not (path / s).is_file()]
        if absent:
            raise CheckpointError(f"{path.name}: shard(s) listed in model.safetensors.index.json are missing: "
                                  f"{absent[:4]}. Download the missing files.")
        return [path / s for s in shards]
    return sorted(path.glob("*.safetensors"))


def open_gemma4(path: str | os.PathLike) -> Gemma4Bundle:
    """Validate a bundled Gemma-4 file or a Hugging Face Gemma-4 folder and describe it (headers, config; no
    weights read).

    Mirrors ``ltx_core.text_encoders.gemma.gemma_assets.GemmaAssets.load`` (``from_single_file`` / ``from_root``)
    with ``GEMMA4_UNIFIED_LLM_KEY_OPS`` of ``ltx_core.text_encoders.gemma.encoders.encoder_configurator``.

    Raises:
        CheckpointError: nothing at ``path``; a truncated or unreadable file; no ``gemma_config`` metadata or
            ``config.json``; a config that is not a ``gemma4_unified`` model; no ``tokenizer_json`` tensor or
            ``tokenizer.json``; no language-model weights.
    """
    path = Path(path)
    if path.is_dir():
        config_path, tok_path = path / "config.json", path / "tokenizer.json"
        if not config_path.is_file():
            raise CheckpointError(f"{path} has no config.json; a Gemma-4 folder needs config.json, tokenizer.json "
                                  "and model*.safetensors.")
        raw = read_config_file(config_path)
        if not tok_path.is_file():
            raise CheckpointError(f"{path} has no tokenizer.json. Copy the Gemma-4 tokenizer files into it.")
        weight_files = [SafetensorsFile(p) for p in _folder_files(path)]
        extra = [SafetensorsFile(p) for p in sorted(path.rglob("*.safetensors"))
                 if p not in {f.path for f in weight_files}]
        tokenizer: SafetensorsFile | Path = tok_path
        projection = _projection([*weight_files, *extra])
    elif _is_file(path):
        f = SafetensorsFile(path)
        if GEMMA_CONFIG_KEY not in f.metadata:
            raise CheckpointError(f"{f.name} has no '{GEMMA_CONFIG_KEY}' metadata, so it is not a bundled LTX-2.5 "
                                  f"text encoder (or it was re-saved without its metadata). {_FIX}")
        raw = parse_config_text(f"{f.name}: __metadata__['{GEMMA_CONFIG_KEY}']", f.metadata[GEMMA_CONFIG_KEY])
        if TOKENIZER_KEY not in f.tensors:
            raise CheckpointError(f"{f.name} has no '{TOKENIZER_KEY}' tensor (the embedded tokenizer). {_FIX}")
        weight_files, tokenizer, projection = [f], f, _projection([f])
    else:
        raise CheckpointError(f"Gemma-4 text encoder not found or not a .safetensors file / folder: {path}")
    config = parse_gemma4_config(path.name, raw)
    views = [_lm_view(f) for f in weight_files]
    if not any(v.tensors for v in views):
        raise CheckpointError(f"{path.name} has a Gemma-4 config but no language-model weights "
                              f"({' / '.join(p + '*' for p in LM_PREFIXES)}). {_FIX}")
    weights = GemmaTensors([v for v in views if v.tensors], what=path.name)
    return Gemma4Bundle(path.name, config, weights, tokenizer, projection)


def _as_bundle(source: str | os.PathLike | Gemma4Bundle) -> Gemma4Bundle:
    return source if isinstance(source, Gemma4Bundle) else open_gemma4(source)


def build_gemma4(config: Gemma4Config, tensors: GemmaTensors | Any, *, dtype: torch.dtype = torch.bfloat16,
                 device: torch.device | str = "cpu", dequantize: bool = False) -> Gemma4TextModel:
    """Build :class:`~rs_ltxv.ltx.text.gemma4.Gemma4TextModel` on meta and fill it from ``tensors`` (a
    :class:`~.source.TensorSource` or mapping under ``Gemma4UnifiedTextModel`` names) in ``dtype`` on ``device``;
    quantised decoder-layer Linear weights stay quantised unless ``dequantize``.

    Mirrors ``ltx_core.text_encoders.gemma.encoders.encoder_configurator.GemmaTextEncoderConfigurator`` built by
    ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder``.

    Raises:
        CheckpointError: tensors missing, unexpected or of the wrong shape for ``config``; unreadable tensors.
    """
    source = as_source(tensors, name="Gemma-4 text encoder")
    describe = (f"Gemma-4 config ({config.num_hidden_layers} layers, hidden {config.hidden_size}, "
                f"{config.layer_types.count('full_attention')} global)")
    return materialize(lambda: Gemma4TextModel(config), source, {n: n for n in source.tensors},
                       what="Gemma-4 text encoder", dtype=dtype, device=device, dequantize=dequantize,
                       config_name=describe)


def load_gemma4(path: str | os.PathLike | Gemma4Bundle, *, dtype: torch.dtype = torch.bfloat16,
                device: torch.device | str = "cpu", config: Gemma4Config | None = None,
                dequantize: bool = False) -> Gemma4TextModel:
    """The Gemma-4 text model of a bundled file or folder (:func:`open_gemma4`); ``config`` replaces the stored one.

    Mirrors ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder.build`` with
    ``ltx_core.text_encoders.gemma.encoders.encoder_configurator.GemmaTextEncoderConfigurator``.

    Raises:
        CheckpointError: see :func:`open_gemma4` and :func:`build_gemma4`.
    """
    bundle = _as_bundle(path)
    return build_gemma4(config or bundle.config, bundle.weights, dtype=dtype, device=device, dequantize=dequantize)


def _tensor_bytes(f: SafetensorsFile, key: str) -> bytes:
    raw = f.read({"t": key}, dtype=None, device=torch.device("cpu"))["t"]
    return raw.to(torch.uint8).numpy().tobytes()


def load_gemma4_tokenizer(path: str | os.PathLike | Gemma4Bundle, **kw) -> Gemma4Tokenizer:
    """The tokenizer of a bundled file (``tokenizer_json`` tensor, ``hf_asset__tokenizer_config.json`` tensor or
    ``tokenizer_config.json`` metadata) or folder (``tokenizer.json``, ``tokenizer_config.json``); ``kw`` goes to
    :class:`~rs_ltxv.ltx.text.gemma4_tokenizer.Gemma4Tokenizer` (``max_length`` …). The config's ``bos_token_id``
    is the BOS when the vocabulary has no BOS piece.

    Mirrors ``ltx_core.text_encoders.gemma.encoders.base_encoder.build_gemma_tokenizer``.

    Raises:
        CheckpointError: see :func:`open_gemma4`; an unreadable tokenizer.
    """
    bundle = _as_bundle(path)
    kw.setdefault("bos_id", bundle.config.bos_token_id)
    kw.setdefault("pad_id", bundle.config.pad_token_id)
    source = bundle.tokenizer
    if isinstance(source, Path):
        side = source.parent / "tokenizer_config.json"
        return Gemma4Tokenizer.from_json(source.read_bytes(), side.read_bytes() if side.is_file() else None,
                                         what=str(source), **kw)
    side_key = f"{ASSET_PREFIX}tokenizer_config.json"
    side_cfg = (_tensor_bytes(source, side_key) if side_key in source.tensors
                else source.metadata.get("tokenizer_config.json", "").encode() or None)
    return Gemma4Tokenizer.from_json(_tensor_bytes(source, TOKENIZER_KEY), side_cfg,
                                     what=f"{source.name}: tensor '{TOKENIZER_KEY}'", **kw)
