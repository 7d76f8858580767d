"""Load the Gemma-3 text encoder and its tokenizer.

Sources:
* a Hugging Face Gemma-3 folder: ``config.json`` + ``model.safetensors`` or sharded ``model-*.safetensors`` with
  ``model.safetensors.index.json``; tokenizer ``tokenizer.model`` / ``tokenizer.json``;
* ComfyUI's single-file text encoders (``gemma_3_12B_it*.safetensors``): ``model.*`` names, the tokenizer embedded
  as the ``spiece_model`` uint8 tensor, optionally float8 weights with scales (dequantised on load); the config is
  inferred from tensor shapes (see :func:`infer_gemma_config`);
* llama.cpp Gemma-3 GGUF files (``gemma3`` architecture, see ``gemma_gguf.py``): config from the ``gemma3.*``
  metadata, tokenizer rebuilt from ``tokenizer.ggml.*``; block-quantised Linear weights stay quantised
  (``gguf_loader.GGUFLinear``, dequantised on each forward) unless ``dequantize=True``, everything else (embeddings,
  norms, F32/F16/BF16 weights) is dequantised into the target dtype;
* any name → tensor mapping with ``Gemma3TextModel`` names through :func:`build_gemma`.

The model is built on the meta device and each tensor is read from the memory map straight into the target dtype
and device, so no second copy is held.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ...gguf_loader import replace_linears
from ..errors import CheckpointError, ConfigError
from ..text.gemma import GemmaTextModel
from ..text.gemma_config import GemmaConfig, RopeSpec, default_layer_types
from ..text.tokenizer import GemmaTokenizer
from .gemma_gguf import GemmaGGUFTensors, gemma_config_from_gguf, gguf_tokenizer_bytes, open_gemma_gguf
from .gemma_tensors import GemmaTensors, open_gemma_files
from .materialize import _names

# Known Gemma-3 sizes by hidden width: (sliding_window, global linear RoPE factor, query_pre_attn_scalar).
KNOWN_SIZES: dict[int, tuple[int, float, float]] = {
    640: (512, 1.0, 256),     # 270M
    1152: (512, 1.0, 256),    # 1B
    2560: (1024, 8.0, 256),   # 4B
    3840: (1024, 8.0, 256),   # 12B (LTX-2 / LTX-2.3)
    5376: (1024, 8.0, 168),   # 27B
}


def _safetensors_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as exc:
            raise CheckpointError(f"{index} is not a valid safetensors index ({exc}).") from exc
        shards = sorted(set(weight_map.values()))
        absent = [s for s in shards if not (path / s).is_file()]
        if absent:
            raise CheckpointError(f"{path.name}: {len(absent)} shard(s) listed in model.safetensors.index.json are "
                                  f"missing: {absent[:4]}. Download the missing files.")
        return [path / s for s in shards]
    files = sorted(path.glob("*.safetensors"))
    if not files:
        found = sorted(p.name for p in path.iterdir())[:10]
        raise CheckpointError(f"{path} has no .safetensors weights (found: {found}). A Gemma-3 folder needs "
                              "config.json and model*.safetensors.")
    return files


def open_gemma(path: str | os.PathLike) -> GemmaTensors | GemmaGGUFTensors:
    """Validate the file(s) at ``path`` (a ``.safetensors`` file, a Hugging Face folder or a Gemma-3 ``.gguf``)
    and map their tensors lazily under ``Gemma3TextModel`` names."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Gemma text encoder not found: {path}")
    if path.is_file() and path.suffix.lower() == ".gguf":
        return open_gemma_gguf(path)
    if path.is_file() and path.suffix.lower() not in (".safetensors", ".sft"):
        raise CheckpointError(f"{path.name}: unsupported text-encoder format '{path.suffix}'. Use a .safetensors "
                              "file (ComfyUI's gemma_3_*.safetensors), a Hugging Face Gemma-3 folder or a GGUF.")
    return open_gemma_files(_safetensors_files(path), what=path.name)


def infer_gemma_config(tensors: Mapping[str, torch.Tensor] | GemmaTensors) -> GemmaConfig:
    """A :class:`GemmaConfig` from tensor shapes; the values shapes cannot tell come from :data:`KNOWN_SIZES`."""
    def shape(name: str) -> tuple[int, ...]:
        if name not in tensors:
            raise CheckpointError(f"Cannot infer the Gemma config: tensor '{name}' is missing.")
        return tuple(tensors.shape(name)) if isinstance(tensors, GemmaTensors) else tuple(tensors[name].shape)

    vocab, hidden = shape("embed_tokens.weight")
    layers = 1 + max(int(n.split(".")[1]) for n in tensors if n.startswith("layers."))
    head_dim = shape("layers.0.self_attn.q_norm.weight")[0]
    if hidden not in KNOWN_SIZES:
        raise ConfigError(f"Gemma with hidden size {hidden} is not a known Gemma-3 size ({sorted(KNOWN_SIZES)}); "
                          "put its Hugging Face config.json next to the weights or pass config=.")
    window, factor, scalar = KNOWN_SIZES[hidden]
    return GemmaConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=shape("layers.0.mlp.gate_proj.weight")[0],
        num_hidden_layers=layers, num_attention_heads=shape("layers.0.self_attn.q_proj.weight")[0] // head_dim,
        num_key_value_heads=shape("layers.0.self_attn.k_proj.weight")[0] // head_dim, head_dim=head_dim,
        query_pre_attn_scalar=scalar, sliding_window=window, layer_types=default_layer_types(layers, 6),
        rope_local=RopeSpec(10_000.0), rope_global=RopeSpec(1_000_000.0, factor),
    )


def gemma_config_for(path: str | os.PathLike, tensors: GemmaTensors | GemmaGGUFTensors) -> GemmaConfig:
    """GGUF: its ``gemma3.*`` metadata. Otherwise ``config.json`` of a folder (or next to a file), else
    ``__metadata__["config"]``, else inferred."""
    if isinstance(tensors, GemmaGGUFTensors):
        return gemma_config_from_gguf(tensors.file)
    path = Path(path)
    candidates = [path / "config.json"] if path.is_dir() else [path.with_suffix(".json"), path.parent / "config.json"]
    for candidate in candidates:
        if candidate.is_file():
            try:
                cfg = json.loads(candidate.read_text())
            except json.JSONDecodeError as exc:
                raise CheckpointError(f"{candidate} is not valid JSON ({exc}).") from exc
            if "text_config" in cfg or cfg.get("model_type", "").startswith("gemma3"):
                return GemmaConfig.from_hf_dict(cfg)
    for f in tensors.files:
        meta = f.metadata.get("config")
        if meta:
            try:
                return GemmaConfig.from_hf_dict(json.loads(meta))
            except (json.JSONDecodeError, ConfigError):
                pass
    return infer_gemma_config(tensors)


def _is_lazy(tensors: Mapping[str, torch.Tensor]) -> bool:
    """Lazy sources (:class:`GemmaTensors`, :class:`GemmaGGUFTensors`) answer ``shape(name)`` without reading and
    ``read(name, dtype=, device=)`` one tensor at a time."""
    return callable(getattr(tensors, "shape", None)) and callable(getattr(tensors, "read", None))


def _quantized_linears(model: GemmaTextModel, tensors: Mapping[str, torch.Tensor]) -> dict[str, object]:
    """Module path → GGML type of every Linear whose weight ``tensors`` keeps block-quantised."""
    kind = getattr(tensors, "quantized_type", None)
    if kind is None:
        return {}
    found = {}
    for path, child in model.named_modules():
        qtype = kind(f"{path}.weight") if isinstance(child, nn.Linear) else None
        if qtype is not None:
            found[path] = qtype
    return found


def build_gemma(config: GemmaConfig, tensors: Mapping[str, torch.Tensor], *, dtype: torch.dtype = torch.bfloat16,
                device: torch.device | str = "cpu", what: str = "Gemma text encoder",
                dequantize: bool = False) -> GemmaTextModel:
    """Build :class:`GemmaTextModel` on meta and fill it from ``tensors`` (``Gemma3TextModel`` names), one tensor at
    a time, in ``dtype`` on ``device``. ``tensors`` may be lazy (:class:`GemmaTensors`, :class:`GemmaGGUFTensors`)
    or any mapping of tensors. Linear weights a GGUF source keeps block-quantised become ``GGUFLinear`` layers
    holding the stored blocks (a view of the memory map on CPU), unless ``dequantize``."""
    device = torch.device(device)
    with torch.device("meta"):
        model = GemmaTextModel(config)
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        parts = ([f"missing {len(missing)}: {_names(missing)}"] if missing else []) + (
            [f"unexpected {len(unexpected)}: {_names(unexpected)}"] if unexpected else [])
        raise CheckpointError(f"{what} does not match its Gemma config ({config.num_hidden_layers} layers, hidden "
                              f"{config.hidden_size}) — {'; '.join(parts)}. The file is another model or incomplete.")
    lazy = _is_lazy(tensors)
    bad = []
    for name, param in expected.items():
        shape = tuple(tensors.shape(name)) if lazy else tuple(tensors[name].shape)
        if shape != tuple(param.shape):
            bad.append(f"{name}: file {shape} vs model {tuple(param.shape)}")
    if bad:
        raise CheckpointError(f"{what}: {len(bad)} tensor(s) have the wrong shape: {'; '.join(bad[:4])}. The config "
                              "does not describe these weights.")
    quantized = {} if dequantize else _quantized_linears(model, tensors)
    replace_linears(model, quantized)
    state = {}
    for name in expected:
        if name.removesuffix(".weight") in quantized:
            state[name.removesuffix("weight") + "qweight"] = tensors.raw(name, device)
            continue
        tensor = tensors.read(name, dtype=dtype, device=device) if lazy else tensors[name]
        state[name] = tensor.to(device=device, dtype=dtype)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval().requires_grad_(False)


def load_gemma(path: str | os.PathLike, *, dtype: torch.dtype = torch.bfloat16, device: torch.device | str = "cpu",
               config: GemmaConfig | None = None, dequantize: bool = False) -> GemmaTextModel:
    """Gemma-3 text model from a Hugging Face folder, a (ComfyUI) single ``.safetensors`` file or a llama.cpp
    Gemma-3 ``.gguf`` (quantised Linear weights kept quantised unless ``dequantize``)."""
    tensors = open_gemma(path)
    config = config or gemma_config_for(path, tensors)
    return build_gemma(config, tensors, dtype=dtype, device=device, what=Path(path).name, dequantize=dequantize)


def load_gemma_tokenizer(path: str | os.PathLike, **kw) -> GemmaTokenizer:
    """The tokenizer of a Gemma folder (``tokenizer.model`` / ``tokenizer.json``), a tokenizer file, the
    ``spiece_model`` tensor embedded in ComfyUI's Gemma ``.safetensors`` file (or a tokenizer file next to it), or
    the ``tokenizer.ggml.*`` vocabulary of a Gemma-3 ``.gguf``."""
    path = Path(path)
    if path.is_dir() or path.suffix in (".model", ".json"):
        return GemmaTokenizer.from_file(path, **kw)
    if path.suffix.lower() == ".gguf":
        return GemmaTokenizer.from_bytes(gguf_tokenizer_bytes(path), **kw)
    if path.suffix.lower() in (".safetensors", ".sft"):
        from .safetensors_file import SafetensorsFile

        f = SafetensorsFile(path)
        if "spiece_model" in f.tensors:
            raw = f.read({"t": "spiece_model"}, dtype=None, device=torch.device("cpu"))["t"]
            return GemmaTokenizer.from_bytes(raw.to(torch.uint8).numpy().tobytes(), **kw)
        for sibling in (path.parent / "tokenizer.model", path.parent / "tokenizer.json"):
            if sibling.is_file():
                return GemmaTokenizer.from_file(sibling, **kw)
    raise CheckpointError(f"No tokenizer for {path.name}: it has no embedded 'spiece_model' and no tokenizer.model or "
                          "tokenizer.json lies next to it. Use ComfyUI's gemma_3_*.safetensors (tokenizer inside) or "
                          "a Hugging Face Gemma-3 folder.")
