"""Load the Gemma-3 text encoder and its tokenizer.

Sources:
* a Hugging Face Gemma-3 folder: ``config.json`` + ``model.safetensors`` or sharded ``model-*.safetensors`` with
  ``model.safetensors.index.json``; tokenizer ``tokenizer.model`` / ``tokenizer.json``;
* ComfyUI's single-file text encoders (``gemma_3_12B_it*.safetensors``): ``model.*`` names, the tokenizer embedded
  as the ``spiece_model`` uint8 tensor, optionally float8 weights with scales (dequantised on load); the config is
  inferred from tensor shapes (see :func:`infer_gemma_config`) unless a ``config.json`` lies next to the file;
* llama.cpp Gemma-3 GGUF files (``gemma3`` architecture, see ``gemma_gguf.py``): config from the ``gemma3.*``
  metadata, tokenizer rebuilt from ``tokenizer.ggml.*``; block-quantised Linear weights stay quantised
  (``gguf_loader.GGUFLinear``, dequantised on each forward) unless ``dequantize=True``, everything else (embeddings,
  norms, F32/F16/BF16 weights) is dequantised into the target dtype;
* any name → tensor mapping with ``Gemma3TextModel`` names through :func:`build_gemma`.

Each of these is a :class:`~.source.TensorSource`; the config is resolved (given → stored → inferred) by
:func:`~.resolve.resolve_config` and the model is built by :func:`~.materialize.materialize` on the meta device, each
tensor read from the memory map straight into the target dtype and device, so no second copy is held.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import CheckpointError, ConfigError
from ..text.gemma import GemmaTextModel
from ..text.gemma4 import Gemma4TextModel
from ..text.gemma4_config import Gemma4Config
from ..text.gemma_config import KNOWN_SIZES, GemmaConfig, RopeSpec, default_layer_types
from ..text.tokenizer import GemmaTokenizer
from .config_json import read_config_file
from .config_limits import check_int
from .gemma4 import is_gemma4, load_gemma4, load_gemma4_tokenizer
from .gemma_gguf import GemmaGGUFTensors, gguf_tokenizer_bytes, open_gemma_gguf
from .gemma_tensors import GemmaTensors, open_gemma_files
from .infer import shape_of
from .layout import count_blocks
from .materialize import materialize
from .quant_plan import logical_infos
from .resolve import resolve_config
from .safetensors_file import SafetensorsFile
from .source import TensorSource, as_source

__all__ = ["KNOWN_SIZES", "build_gemma", "infer_gemma_config", "load_gemma", "load_gemma_tokenizer", "open_gemma"]


def _safetensors_files(path: Path) -> list[Path]:
    """The weight files of a ``.safetensors`` path or a Hugging Face folder (sharded through its index);
    :class:`CheckpointError` for a bad index, missing shards or a folder without weights."""
    if path.is_file():
        return [path]
    index = path / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_config_file(index).get("weight_map")
        if not isinstance(weight_map, dict) or not all(
                isinstance(v, str) and Path(v).name == v and v for v in weight_map.values()):
            raise CheckpointError(f"{index} is not a valid safetensors index: 'weight_map' must map tensor names to "
                                  "shard file names in the same folder.")
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
    and return their :class:`~.source.TensorSource` under ``Gemma3TextModel`` names (tensors described by name,
    stored dtype and shape; none read yet).

    Mirrors the file side of ``ltx_core.loader.sft_loader.SafetensorsModelStateDictLoader`` with
    ``ltx_core.text_encoders.gemma.encoders.encoder_configurator.GEMMA_LLM_KEY_OPS``.

    Raises:
        CheckpointError: nothing at ``path``; an unsupported format; missing shards; files that hold no Gemma-3.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Gemma text encoder not found: {path}")
    if path.is_file() and path.suffix.lower() == ".gguf":
        return open_gemma_gguf(path)
    if path.is_file() and path.suffix.lower() not in (".safetensors", ".sft"):
        raise CheckpointError(f"{path.name}: unsupported text-encoder format '{path.suffix}'. Use a .safetensors "
                              "file (ComfyUI's gemma_3_*.safetensors), a Hugging Face Gemma-3 folder or a GGUF.")
    sidecars = [path / "config.json"] if path.is_dir() else [path.with_suffix(".json"), path.parent / "config.json"]
    return open_gemma_files(_safetensors_files(path), what=path.name, config_files=sidecars)


def infer_gemma_config(tensors: Mapping[str, torch.Tensor] | TensorSource) -> GemmaConfig:
    """A :class:`GemmaConfig` from tensor shapes (``Gemma3TextModel`` names: ``embed_tokens.weight`` of shape
    ``(vocab, hidden)``, ``layers.N.*``); the values shapes cannot tell come from :data:`KNOWN_SIZES`. ltx-core has
    no inference (it reads the Hugging Face ``config.json``).

    Raises:
        CheckpointError: a tensor the inference reads is missing or of the wrong rank.
        ConfigError: the hidden width is not a known Gemma-3 size; the layer count is out of range.
    """
    infos = logical_infos(as_source(tensors).tensors)  # NVFP4 weights: their unpacked shapes

    def shape(name: str, rank: int = 2) -> tuple[int, ...]:
        if name not in infos:
            raise CheckpointError(f"Cannot infer the Gemma config: tensor '{name}' is missing.")
        return shape_of({name: tuple(infos[name].shape)}, name, rank, "Gemma text model")

    vocab, hidden = shape("embed_tokens.weight", 2)
    layers = count_blocks(infos, "layers")
    check_int(f"Gemma weights ({layers} layers)", "num_hidden_layers", layers)  # before 10⁹ layer types are made
    head_dim = shape("layers.0.self_attn.q_norm.weight", 1)[0]
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


def build_gemma(config: GemmaConfig, tensors: Mapping[str, torch.Tensor] | TensorSource, *,
                dtype: torch.dtype = torch.bfloat16, device: torch.device | str = "cpu",
                what: str = "Gemma text encoder", dequantize: bool = False) -> GemmaTextModel:
    """Build :class:`GemmaTextModel` on meta and fill it from ``tensors`` (``Gemma3TextModel`` names), one tensor at
    a time, in ``dtype`` on ``device`` (:func:`~.materialize.materialize`).

    Args:
        config: the model's config.
        tensors: a :class:`~.source.TensorSource` (:func:`open_gemma`) or any mapping of tensors (named ``what``
            in messages).
        dequantize: load Linear weights a GGUF source keeps block-quantised as plain tensors instead of
            ``GGUFLinear`` layers holding the stored blocks (a view of the memory map on CPU).

    Mirrors ``ltx_core.text_encoders.gemma.encoders.encoder_configurator.GemmaTextEncoderConfigurator`` with
    ``GEMMA_LLM_KEY_OPS`` (same module), built by ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder``.

    Raises:
        CheckpointError: tensors missing, unexpected or of the wrong shape for ``config``; a tensor cannot be read.
    """
    source = as_source(tensors, name=what)
    names = {name: name for name in source.tensors}
    describe = f"Gemma config ({config.num_hidden_layers} layers, hidden {config.hidden_size})"
    return materialize(lambda: GemmaTextModel(config), source, names, what="text encoder", dtype=dtype,
                       device=device, dequantize=dequantize, config_name=describe)


def load_gemma(path: str | os.PathLike, *, dtype: torch.dtype = torch.bfloat16, device: torch.device | str = "cpu",
               config: GemmaConfig | Gemma4Config | None = None,
               dequantize: bool = False) -> GemmaTextModel | Gemma4TextModel:
    """Gemma-3 text model from a Hugging Face folder, a (ComfyUI) single ``.safetensors`` file or a llama.cpp
    Gemma-3 ``.gguf`` (quantised Linear weights kept quantised unless ``dequantize``); LTX-2.5's Gemma-4 (the
    bundled file or a Gemma-4 folder, told by content: :func:`~.gemma4.is_gemma4`) through
    :func:`~.gemma4.load_gemma4`.

    The config: ``config`` when given; else a GGUF's ``gemma3.*`` metadata, a ``config.json`` next to the weights
    or a shard's ``__metadata__["config"]``; else inferred from the shapes (:func:`infer_gemma_config`).

    Mirrors ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder.build`` with
    ``ltx_core.text_encoders.gemma.encoders.encoder_configurator.GemmaTextEncoderConfigurator`` (safetensors only).

    Raises:
        CheckpointError: see :func:`open_gemma` and :func:`build_gemma`; the config is invalid or cannot be inferred.
    """
    if is_gemma4(path):
        return load_gemma4(path, dtype=dtype, device=device, config=config, dequantize=dequantize)
    source = open_gemma(path)
    resolved = resolve_config(source.name, config, source.config, key=None, config_type=GemmaConfig,
                              parse=GemmaConfig.from_hf_dict, infer=lambda: infer_gemma_config(source))
    return build_gemma(resolved.config, source, dtype=dtype, device=device, dequantize=dequantize)


def load_gemma_tokenizer(path: str | os.PathLike, **kw) -> GemmaTokenizer:
    """The tokenizer of a Gemma folder (``tokenizer.model`` / ``tokenizer.json``), a tokenizer file, the
    ``spiece_model`` tensor embedded in ComfyUI's Gemma ``.safetensors`` file (or a tokenizer file next to it), or
    the ``tokenizer.ggml.*`` vocabulary of a Gemma-3 ``.gguf``. ``kw`` goes to :class:`GemmaTokenizer`. LTX-2.5's
    Gemma-4 file or folder gives a :class:`~rs_ltxv.ltx.text.gemma4_tokenizer.Gemma4Tokenizer`
    (:func:`~.gemma4.load_gemma4_tokenizer`).

    Mirrors ``ltx_core.text_encoders.gemma.tokenizer.LTXVGemmaTokenizer`` (which reads a Hugging Face folder only).

    Raises:
        CheckpointError: no tokenizer is found, or the file holding it is unreadable.
    """
    path = Path(path)
    if is_gemma4(path):
        return load_gemma4_tokenizer(path, **kw)
    if path.is_dir() or path.suffix in (".model", ".json"):
        return GemmaTokenizer.from_file(path, **kw)
    if path.suffix.lower() == ".gguf":
        return GemmaTokenizer.from_bytes(gguf_tokenizer_bytes(path), **kw)
    if path.suffix.lower() in (".safetensors", ".sft"):
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
