"""Gemma weights as a lazy name → tensor mapping over one or more ``.safetensors`` files.

Names are normalised to ``Gemma3TextModel``'s (``layers.0.self_attn.q_proj.weight`` …) whatever the file uses:
``language_model.model.*`` (Hugging Face ``Gemma3ForConditionalGeneration``, transformers 4.x),
``model.language_model.*`` (transformers ≥ 4.52), ``model.*`` (``Gemma3ForCausalLM`` and ComfyUI's single files)
or bare names. Vision tower, projector and LM head tensors are ignored.

ComfyUI's quantised files are dequantised on read: float8 ``<layer>.weight`` times its float32 ``<layer>.weight_scale``
(comfy-kitchen layout, marked by ``<layer>.comfy_quant`` JSON) or ``<layer>.scale_weight`` (the older ``scaled_fp8``
layout). Other quantisations (nvfp4 …) are refused with a message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from safetensors import safe_open

from ..errors import CheckpointError
from .safetensors_file import DTYPES, SafetensorsFile

PREFIXES = ("language_model.model.", "model.language_model.", "model.", "")
_ANCHOR = "embed_tokens.weight"
_SCALE_SUFFIXES = (".weight_scale", ".scale_weight")
_IGNORED_SUFFIXES = (".comfy_quant", ".input_scale", ".scale_input")
_FP8 = ("F8_E4M3", "F8_E5M2")
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


class GemmaTensors(Mapping[str, torch.Tensor]):
    """Lazy mapping ``model name → tensor`` over ``files``; each access reads one tensor from the memory map (on
    ``device`` when given) and dequantises float8 weights. :meth:`shape` answers without reading."""

    def __init__(self, files: list[SafetensorsFile], *, what: str) -> None:
        self.files = files
        self.what = what
        self._where: dict[str, tuple[SafetensorsFile, str]] = {}
        for f in files:
            for key in f.tensors:
                self._where[key] = (f, key)
        self.prefix = find_prefix(set(self._where), what)
        self._names: dict[str, str] = {}
        self._scales: dict[str, str] = {}
        for key in self._where:
            if not key.startswith(self.prefix) or key.endswith(_IGNORED_SUFFIXES):
                continue
            name = key[len(self.prefix):]
            if name in _NOT_WEIGHTS or name.startswith(("vision_tower.", "multi_modal_projector.", "lm_head.")):
                continue
            scale = next((s for s in _SCALE_SUFFIXES if name.endswith(s)), None)
            if scale:
                self._scales[name[: -len(scale)] + ".weight"] = key
            else:
                self._names[name] = key
        self._check_quantisation()

    def _check_quantisation(self) -> None:
        formats = set()
        for key, (f, _) in self._where.items():
            if key.endswith(".comfy_quant"):
                formats.add(_quant_format(f, key))
        unsupported = formats - {"float8_e4m3fn", "float8_e5m2", "?"}
        if unsupported:
            raise CheckpointError(f"{self.what} is quantised as {sorted(unsupported)}, which RS-LTXV cannot load. "
                                  "Use the bf16 or fp8 Gemma file, or a GGUF quantisation.")
        for name, key in self._names.items():
            info = self._where[key][0].tensors[key]
            if info.dtype in _FP8 and name not in self._scales:
                continue  # a plain float8 cast (no scale): read as is
            if info.dtype not in DTYPES or (info.dtype in ("U8", "I8") and name.endswith(".weight")):
                raise CheckpointError(f"{self.what}: tensor {key} has dtype {info.dtype}, a packed quantisation "
                                      "RS-LTXV cannot load. Use the bf16 or fp8 Gemma file, or a GGUF quantisation.")

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.read(name)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def shape(self, name: str) -> tuple[int, ...]:
        f, key = self._where[self._names[name]]
        return f.tensors[key].shape

    def is_quantised(self, name: str) -> bool:
        return name in self._scales

    def read(self, name: str, *, dtype: torch.dtype | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        """One tensor in ``dtype`` (None: stored dtype; float8 weights with a scale become ``dtype`` or float32)."""
        device = torch.device(device)
        f, key = self._where[self._names[name]]
        tensor = _get(f, key, device)
        if name in self._scales:
            sf, skey = self._where[self._scales[name]]
            scale = _get(sf, skey, device).float()
            tensor = (tensor.float() * scale).to(dtype or torch.float32)
        elif dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
            tensor = tensor.to(dtype)
        return tensor


def _get(f: SafetensorsFile, key: str, device: torch.device) -> torch.Tensor:
    with safe_open(str(f.path), framework="pt", device="cpu" if device.type == "meta" else str(device)) as fh:
        return fh.get_tensor(key)


def _quant_format(f: SafetensorsFile, key: str) -> str:
    try:
        raw = bytes(_get(f, key, torch.device("cpu")).to(torch.uint8).tolist())
        return str(json.loads(raw).get("format", "?"))
    except (ValueError, TypeError, AttributeError):
        return "?"


def open_gemma_files(paths: list[Path], what: str) -> GemmaTensors:
    """Validate every file's header and return the lazy mapping."""
    return GemmaTensors([SafetensorsFile(p) for p in paths], what=what)
