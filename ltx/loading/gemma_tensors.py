"""Gemma weights over one or more ``.safetensors`` files as a :class:`~.source.TensorSource` (read lazily).

Names are normalised to ``Gemma3TextModel``'s (``layers.0.self_attn.q_proj.weight`` …) whatever the file uses:
``language_model.model.*`` (Hugging Face ``Gemma3ForConditionalGeneration``, transformers 4.x),
``model.language_model.*`` (transformers ≥ 4.52), ``model.*`` (``Gemma3ForCausalLM`` and ComfyUI's single files)
or bare names. Vision tower, projector and LM head tensors are ignored.

ComfyUI's quantised files keep their decoder-layer Linear weights quantised: the scale / ``comfy_quant`` tensors of
``layers.*`` weights are listed under their model names (``layers.0.mlp.up_proj.weight_scale`` …), so
``quant_plan.plan_quantised`` makes those layers ``QuantLinear`` (float8, ``int8_tensorwise`` (+ ConvRot), ``nvfp4``,
as for the transformer). The token embedding is dequantised on read: float8 ``embed_tokens.weight`` times its
``weight_scale`` / ``scale_weight``; any other quantisation of it is refused with a message.

The stored config (:meth:`GemmaTensors.config`) is a Hugging Face ``config.json`` lying next to the weights, else the
``__metadata__["config"]`` of a shard when it describes a Gemma-3.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ..errors import CheckpointError, ConfigError
from ..text.gemma_config import GemmaConfig
from .config_json import parse_config_text, read_config_file
from .config_schema import check_raw
from .safetensors_file import SafetensorsFile
from .safetensors_header import reading
from .source import DTYPES, PlainWeights, TensorInfo, cast, read_device

PREFIXES = ("language_model.model.", "model.language_model.", "model.", "")
_ANCHOR = "embed_tokens.weight"
_SCALE_SUFFIXES = (".weight_scale", ".scale_weight")
_IGNORED_SUFFIXES = (".comfy_quant", ".input_scale", ".scale_input")
_FP8 = ("F8_E4M3", "F8_E5M2")
#: quantisation tensors kept beside a decoder layer's Linear weight (read raw; ``quant_plan.py`` uses them)
_LAYER_PARTS = (".weight_scale", ".scale_weight", ".weight_scale_2", ".input_scale", ".scale_input", ".comfy_quant")
_NOT_WEIGHTS = ("spiece_model", "scaled_fp8")  # ComfyUI: the embedded tokenizer and the fp8 marker


def find_prefix(names: set[str], where: str) -> str:
    """The prefix under which the Gemma text model's tensors live; :class:`CheckpointError` when there is none."""
    for prefix in PREFIXES:
        if prefix + _ANCHOR in names and any(n.startswith(prefix + "layers.") for n in names):
            return prefix
    if any(n.startswith("model.diffusion_model.") for n in names):
        raise CheckpointError(f"{where} is an LTX video model checkpoint, not a Gemma text encoder. Choose the Gemma-3 "
                              "file (e.g. gemma_3_12B_it.safetensors) as the text encoder.")
    roots = sorted({n.split(".")[0] for n in names})[:8]
    raise CheckpointError(f"{where} holds no Gemma-3 text model: no '*{_ANCHOR}' with 'layers.N.*' under any of the "
                          f"prefixes {[p or '<none>' for p in PREFIXES]} (top-level names found: {roots}). "
                          "Use a Hugging Face Gemma-3 folder or ComfyUI's gemma_3_*.safetensors file.")


class GemmaTensors(PlainWeights):
    """``Gemma3TextModel`` names over ``files`` (``tensors``: name → :class:`TensorInfo` of the stored tensor);
    :meth:`read` reads from the memory maps and dequantises float8 weights that have a scale.

    Raises:
        CheckpointError: no Gemma-3 text model in the files, or a quantisation RS-LTXV cannot load.
    """

    def __init__(self, files: list[SafetensorsFile], *, what: str, config_files: Sequence[Path] = ()) -> None:
        self.files = files
        self.name = self.what = what
        self.config_files = tuple(config_files)
        self.metadata: dict[str, Any] = files[0].metadata if files else {}
        self._where: dict[str, tuple[SafetensorsFile, str]] = {}
        for f in files:
            for key in f.tensors:
                self._where[key] = (f, key)
        self.prefix = find_prefix(set(self._where), what)
        self._names: dict[str, str] = {}
        self._scales: dict[str, str] = {}
        for key in self._where:
            if not key.startswith(self.prefix):
                continue
            name = key[len(self.prefix):]
            if name.startswith("layers.") and name.endswith(_LAYER_PARTS):
                self._names[name] = key  # a decoder-layer Linear's quantisation tensors: kept (quant_plan.py)
                continue
            if key.endswith(_IGNORED_SUFFIXES):
                continue
            if name in _NOT_WEIGHTS or name.startswith(("vision_tower.", "multi_modal_projector.", "lm_head.")):
                continue
            scale = next((s for s in _SCALE_SUFFIXES if name.endswith(s)), None)
            if scale:
                self._scales[name[: -len(scale)] + ".weight"] = key
            else:
                self._names[name] = key
        self.tensors: dict[str, TensorInfo] = {n: self._where[k][0].tensors[k] for n, k in self._names.items()}
        self._check_quantisation()

    def _check_quantisation(self) -> None:
        formats = set()
        for key, (f, _) in self._where.items():
            if key.endswith(".comfy_quant") and not key[len(self.prefix):].startswith("layers."):
                formats.add(_quant_format(f, key))  # decoder layers: formats checked by quant_plan.py
        unsupported = formats - {"float8_e4m3fn", "float8_e5m2", "?"}
        if unsupported:
            raise CheckpointError(f"{self.what} is quantised as {sorted(unsupported)}, which RS-LTXV cannot load. "
                                  "Use the bf16 or fp8 Gemma file, or a GGUF quantisation.")
        for name, key in self._names.items():
            info = self._where[key][0].tensors[key]
            if info.dtype in _FP8 and name not in self._scales:
                continue  # a plain float8 cast (no scale): read as is
            packed = info.dtype in ("U8", "I8") and name.endswith(".weight") and not name.startswith("layers.")
            if info.dtype not in DTYPES or packed:
                raise CheckpointError(f"{self.what}: tensor {key} has dtype {info.dtype}, a packed quantisation "
                                      "RS-LTXV cannot load. Use the bf16 or fp8 Gemma file, or a GGUF quantisation.")

    def config(self) -> dict[str, Any] | None:
        """The Hugging Face config of these weights: a Gemma-3 ``config.json`` among :attr:`config_files`, else the
        first shard ``__metadata__["config"]`` that is a valid Gemma-3 config, else None.

        Raises:
            CheckpointError: a ``config.json`` next to the weights is not a readable JSON object
                (:func:`~.config_json.read_config_file`).
        """
        for candidate in self.config_files:
            if candidate.is_file():
                cfg = read_config_file(candidate)
                model_type = cfg.get("model_type", "")
                if "text_config" in cfg or (isinstance(model_type, str) and model_type.startswith("gemma3")):
                    return cfg
        for f in self.files:
            raw = f.metadata.get("config")
            try:
                cfg = parse_config_text(f"{f.name}: __metadata__['config']", raw) if raw else None
                if cfg:
                    check_raw(f.name, cfg, GemmaConfig)
                    GemmaConfig.from_hf_dict(cfg)
                    return cfg
            except (CheckpointError, ConfigError):
                continue  # some other config: infer from the shapes instead
        return None

    def read(self, names: Mapping[str, str], *, dtype: torch.dtype | None,
             device: torch.device) -> dict[str, torch.Tensor]:
        """``{target: model name}`` → tensors, each in its stored shape, in ``dtype`` (None: stored dtype; float8
        weights with a scale become ``dtype`` or float32) on ``device``. Mirrors
        ``ltx_core.loader.sft_loader.SafetensorsStateDictLoader.load`` (plus the float8 dequantisation).

        Raises:
            CheckpointError: a file changed or cannot be read any more (:func:`~.safetensors_header.reading`).
        """
        device = read_device(device)
        with ExitStack() as stack, reading(self.what):
            handles: dict[Path, Any] = {}

            def get(key: str) -> torch.Tensor:
                f = self._where[key][0]
                if f.path not in handles:
                    handles[f.path] = stack.enter_context(safe_open(str(f.path), framework="pt", device=str(device)))
                return handles[f.path].get_tensor(key)

            out = {}
            for target, name in names.items():
                tensor = get(self._names[name])
                if name in self._scales:
                    tensor = (tensor.float() * get(self._scales[name]).float()).to(dtype or torch.float32)
                out[target] = cast(tensor, dtype)
            return out


def _get(f: SafetensorsFile, key: str, device: torch.device) -> torch.Tensor:
    with reading(f.name), safe_open(str(f.path), framework="pt", device=str(read_device(device))) as fh:
        return fh.get_tensor(key)


def _quant_format(f: SafetensorsFile, key: str) -> str:
    """The ``format`` of a ComfyUI ``.comfy_quant`` JSON tensor (a few bytes); "?" when it is not such JSON."""
    if f.tensors[key].nbytes > 65_536:
        return "?"
    try:
        raw = _get(f, key, torch.device("cpu")).to(torch.uint8).numpy().tobytes()
        return str(json.loads(raw).get("format", "?"))[:64]
    except (ValueError, TypeError, AttributeError, RecursionError):  # not JSON, not an object, nested too deeply
        return "?"


def open_gemma_files(paths: list[Path], what: str, config_files: Sequence[Path] = ()) -> GemmaTensors:
    """Validate every file's header and return the :class:`GemmaTensors` over them (``config_files``: where a
    ``config.json`` may lie). Tensors are described (stored dtype, shape), none is read.

    Raises:
        CheckpointError: see :class:`GemmaTensors`; a file is missing, truncated or unreadable.
    """
    return GemmaTensors([SafetensorsFile(p) for p in paths], what=what, config_files=config_files)
