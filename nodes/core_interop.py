"""Core ComfyUI objects → the port's objects, sharing core's weights (no second copy in memory).

Accepted objects (made by core nodes):

* MODEL from CheckpointLoaderSimple / UNETLoader (+ LoraLoaderModelOnly): a ``ModelPatcher`` whose ``model`` is
  ``comfy.model_base.LTXAV`` and whose ``model.diffusion_model`` is core's ``LTXAVModel``. Core keeps the official
  parameter names (no renames: every transformer tensor has the name of the official file after
  ``model.diffusion_model.``), and additionally holds both text connectors as ``video_embeddings_connector.`` /
  ``audio_embeddings_connector.`` (also official names).
* VAE from the checkpoint loader / VAELoader (LTX video VAE), VAE from LTXVAudioVAELoader (audio VAE + vocoder),
  LATENT_UPSCALE_MODEL from LatentUpscaleModelLoader.

How weights are shared: our module is built on the meta device, then every leaf module of ours that holds
parameters is matched with core's module at the same name. Core's ``Linear`` objects (``comfy.ops``: they cast
weights per call, apply LoRA weight functions in low-VRAM mode and handle FP8/scaled weights) are grafted into our
tree as they are; ``RMSNorm`` modules are shallow copies of core's with our epsilon (core's
``comfy.ldm.lightricks.model`` uses 1e-5 for the q/k norms, ltx-core's
``ltx_core.model.transformer.attention.Attention`` 1e-6); every other parameter (``scale_shift_table``,
registers, VAE convolutions) is bound by reference.

User-facing failures (an object that is not what the socket needs, weights that do not fit) raise
:class:`~rs_ltxv.ltx.errors.InputError` with the loader to connect.

Build the adapters right before use, after ``comfy.model_management.load_models_gpu([patcher])``: loading applies
LoRA patches by replacing core's parameter objects, so an adapter built earlier would hold stale tensors.

Nothing here imports ComfyUI at module level; ``comfy`` is never needed (objects are recognised by class name).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from os import PathLike
from typing import Any

import torch
from torch import nn

from ..ltx.config import TransformerConfig
from ..ltx.errors import ConfigError, InputError
from ..ltx.loading.checkpoint import is_distilled as checkpoint_is_distilled
from ..ltx.loading.infer import infer_connector, infer_transformer
from ..ltx.loading.layout import CONNECTOR_PREFIXES
from ..ltx.text.connector import Embeddings1DConnector
from ..ltx.transformer.model import LTXAVTransformer

CORE_LTXAV = ("comfy.model_base", "LTXAV")
CORE_VIDEO_VAE = ("comfy.ldm.lightricks.vae.causal_video_autoencoder", "VideoVAE")
CORE_AUDIO_VAE = ("comfy.ldm.lightricks.vae.audio_vae", "AudioVAE")
CORE_UPSAMPLER = ("comfy.ldm.lightricks.latent_upsampler", "LatentUpsampler")
#: core keeps the audio VAE under ``autoencoder.`` (the official files: ``audio_vae.``)
AUDIO_RENAMES = {"autoencoder.": ""}

CONNECT_MODEL = ("Connect an LTX-2 / LTX-2.3 model: RS LTXV Model Loader, or core's Load Checkpoint with an "
                 "ltx-2-19b-* / ltx-2.3-22b-* file.")


def _kind(obj: Any) -> tuple[str, str]:
    cls = type(obj)
    return cls.__module__, cls.__name__


def _describe(obj: Any) -> str:
    module, name = _kind(obj)
    return f"{module}.{name}"


# ------------------------------------------------------------------------------------------------------- model

def is_core_ltxav(model: Any) -> bool:
    """True for a core ModelPatcher (anything with ``.model``) whose model is ``comfy.model_base.LTXAV``."""
    return _kind(getattr(model, "model", None)) == CORE_LTXAV


def is_distilled(patcher: Any) -> bool:
    """Whether core loaded a distilled checkpoint, read from the file name core keeps for reloading
    (``cached_patcher_init``), with :func:`rs_ltxv.ltx.loading.is_distilled` ("distilled" in the name, as in
    ltx-2.3-22b-distilled.safetensors). False when unknown — e.g. a dev checkpoint with the distilled LoRA: connect
    the distilled sigmas then."""
    init = getattr(patcher, "cached_patcher_init", None)
    try:
        path = init[1][0]
    except (TypeError, IndexError, KeyError):
        return False
    return isinstance(path, (str, PathLike)) and checkpoint_is_distilled(path)


def core_diffusion_model(patcher: Any, what: str = "model") -> nn.Module:
    """Core's ``LTXAVModel`` inside ``patcher``; :class:`InputError` for anything else."""
    if not is_core_ltxav(patcher):
        inner = getattr(patcher, "model", patcher)
        raise InputError(f"{what}: expected an LTX-2 / LTX-2.3 MODEL; got {_describe(inner)}. {CONNECT_MODEL}")
    return patcher.model.diffusion_model


def config_from_core(patcher: Any) -> TransformerConfig:
    """Our :class:`TransformerConfig` for core's model: core's ``unet_config`` (the checkpoint's ``config``
    metadata, when it has one) read like a checkpoint's, else inferred from tensor shapes; connector geometry
    always from the connector tensors.

    Raises:
        InputError: ``patcher`` is not a core LTX-2 MODEL, or its config cannot be worked out.
    """
    dm = core_diffusion_model(patcher)
    state = dm.state_dict(keep_vars=True)
    connectors = {c: {k[len(p):]: v for k, v in state.items() if k.startswith(p)}
                  for c, p in CONNECTOR_PREFIXES.items()}
    connectors = {c: t for c, t in connectors.items() if t}
    transformer = {k: v for k, v in state.items() if not k.startswith(tuple(CONNECTOR_PREFIXES.values()))}
    raw = dict(getattr(getattr(patcher.model, "model_config", None), "unet_config", None) or {})
    return config_from_tensors(transformer, connectors, raw)


def config_from_tensors(transformer: Mapping[str, Any], connectors: Mapping[str, Mapping[str, Any]],
                        raw: Mapping[str, Any] | None = None) -> TransformerConfig:
    """Config from tensors (anything with ``.shape``) keyed by official names, and an optional checkpoint-style
    ``config["transformer"]`` dict (core's ``unet_config``; used when it carries the head counts). Like
    :func:`rs_ltxv.ltx.loading.open_checkpoint`'s resolution.

    Raises:
        InputError: the dict is invalid or the shapes do not describe an LTX-2 / LTX-2.3 transformer.
    """
    try:
        if raw and "num_attention_heads" in raw:
            cfg = TransformerConfig.from_dict(dict(raw))
            for name, tensors in connectors.items():
                conn = getattr(cfg, name)
                if "connector_num_layers" not in raw:
                    conn = infer_connector(tensors, conn)
                conn = replace(conn, num_learnable_registers=tensors["learnable_registers"].shape[0])
                cfg = replace(cfg, **{name: conn})
        else:
            cfg = infer_transformer(transformer, connectors, None)  # type: ignore[arg-type]
    except (ConfigError, KeyError, ValueError) as exc:
        raise InputError(f"model: cannot describe this core LTX model for RS-LTXV ({exc}). {CONNECT_MODEL}") from exc
    return cfg


def _replace_child(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    root.get_submodule(parent)._modules[child] = new


def _check_shape(name: str, ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """:class:`InputError` unless the two tensors have the same shape."""
    if tuple(ours.shape) != tuple(theirs.shape):
        raise InputError(f"model: core's tensor {name} has shape {tuple(theirs.shape)}, RS-LTXV expects "
                         f"{tuple(ours.shape)}; the model's config does not match its weights. {CONNECT_MODEL}")


def bind_to_core(ours: nn.Module, core: nn.Module, what: str) -> nn.Module:
    """Make ``ours`` (built on meta) use ``core``'s weights, module name for module name (see the module doc).

    Raises:
        InputError: naming the first module or tensor core lacks or has with another shape.
    """
    core_modules = dict(core.named_modules())
    for name, mod in list(ours.named_modules()):
        own = dict(mod.named_parameters(recurse=False))
        if not own:
            continue
        src = core_modules.get(name)
        if src is None:
            raise InputError(f"{what}: core's model has no module {name!r}; it is not a model RS-LTXV can run.")
        for pname, p in own.items():
            theirs = getattr(src, pname, None)
            if not isinstance(theirs, torch.Tensor):
                raise InputError(f"{what}: core's model has no tensor {name}.{pname}.")
            _check_shape(f"{name}.{pname}", p, theirs)
        if isinstance(mod, nn.Linear) and isinstance(src, nn.Linear) and name:
            _replace_child(ours, name, src)
        elif isinstance(mod, nn.RMSNorm) and isinstance(src, nn.RMSNorm) and name:
            norm = copy.copy(src)  # shares core's parameter dict and weight functions; only eps differs
            norm.eps = mod.eps
            _replace_child(ours, name, norm)
        else:
            for pname in own:
                theirs = getattr(src, pname)
                mod._parameters[pname] = theirs if isinstance(theirs, nn.Parameter) else nn.Parameter(theirs, False)
    for name, buf in list(ours.named_buffers()):
        owner, _, bname = name.rpartition(".")
        src = core_modules.get(owner)
        theirs = src._buffers.get(bname) if src is not None else None
        if theirs is None:
            raise InputError(f"{what}: core's model has no buffer {name}.")
        _check_shape(name, buf, theirs)
        ours.get_submodule(owner)._buffers[bname] = theirs
    left = [n for n, t in [*ours.named_parameters(), *ours.named_buffers()] if t.is_meta]
    if left:
        raise InputError(f"{what}: core's model does not hold {', '.join(left[:4])}.")
    return ours.eval()


def transformer_from_core(patcher: Any) -> LTXAVTransformer:
    """Our transformer running on core's (loaded, LoRA-patched) weights. Call after
    ``load_models_gpu([patcher])`` and use it for this run only.

    Raises:
        InputError: ``patcher`` is not a core LTX-2 MODEL, or its weights do not fit our transformer.
    """
    dm = core_diffusion_model(patcher)
    cfg = config_from_core(patcher)
    with torch.device("meta"):
        model = LTXAVTransformer(cfg)
    return bind_to_core(model, dm, "model")


def connectors_from_core(patcher: Any) -> tuple[Embeddings1DConnector, Embeddings1DConnector]:
    """Our (video, audio) ``Embeddings1DConnector`` on the connector weights core keeps in its diffusion model
    (core's ``comfy.ldm.lightricks.embeddings_connector.Embeddings1DConnector``).

    Raises:
        InputError: ``patcher`` is not a core LTX-2 MODEL, a connector is missing, or its weights do not fit.
    """
    dm = core_diffusion_model(patcher)
    cfg = config_from_core(patcher)
    out = []
    for name, attr in (("video_connector", "video_embeddings_connector"),
                       ("audio_connector", "audio_embeddings_connector")):
        core_conn = getattr(dm, attr, None)
        if not isinstance(core_conn, nn.Module):
            raise InputError(f"model: core's model has no {attr}; it cannot turn text features into contexts.")
        with torch.device("meta"):
            conn = Embeddings1DConnector(getattr(cfg, name))
        out.append(bind_to_core(conn, core_conn, f"model ({attr})"))
    return out[0], out[1]


def compute_placement(patcher: Any) -> tuple[torch.dtype, torch.device]:
    """The dtype core computes this model in and the device it runs on (not the storage dtype: FP8 checkpoints
    store FP8 weights that core's Linear layers cast per call)."""
    model = patcher.model
    dtype = model.get_dtype_inference() if hasattr(model, "get_dtype_inference") else model.get_dtype()
    return dtype, torch.device(patcher.load_device)


# --------------------------------------------------------------------------------------------- VAEs, upsampler

def _first_stage(vae: Any, kind: tuple[str, str], what: str, hint: str) -> nn.Module:
    """The ``first_stage_model`` of a core VAE (or the object itself) when its class is ``kind``; :class:`InputError`
    naming ``hint`` otherwise."""
    model = getattr(vae, "first_stage_model", vae)
    if _kind(model) != kind:
        raise InputError(f"{what}: expected {hint}; got {_describe(model)}.")
    return model


def _build_shared(factory: Callable[[], nn.Module], tensors: Mapping[str, torch.Tensor], what: str) -> nn.Module:
    """``factory()`` on meta, then every tensor assigned from ``tensors`` by reference (strict names and shapes).

    Raises:
        InputError: a tensor is missing or has another shape.
    """
    with torch.device("meta"):
        module = factory()
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise InputError(f"{what}: core's object lacks {len(missing)} tensor(s) RS-LTXV needs, e.g. "
                         f"{', '.join(missing[:4])}.")
    for k, v in expected.items():
        _check_shape(k, v, tensors[k])
    module.load_state_dict({k: tensors[k] for k in expected}, strict=True, assign=True)
    left = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if left:
        raise InputError(f"{what}: could not bind {', '.join(left[:4])}.")
    return module.eval().requires_grad_(False)


def video_vae_from_core(vae: Any, tile_size: int | None = 512) -> Any:
    """Core's LTX video VAE (``comfy.sd.VAE`` around ``comfy.ldm.lightricks.vae.causal_video_autoencoder.VideoVAE``)
    → our :class:`VideoVAEAdapter` on the same tensors. ``tile_size``: spatial tile in pixels for decoding (None:
    untiled).

    Raises:
        InputError: not an LTX-2 video VAE, or a layout or tensor shapes our VAE cannot read.
    """
    from ..ltx.loading.video_vae_infer import infer_video_vae
    from ..ltx.pipeline.parts import VideoVAEAdapter
    from ..ltx.video_vae import TilingConfig, VideoDecoder, VideoEncoder, VideoVAE

    what = "vae"
    core = _first_stage(vae, CORE_VIDEO_VAE, what, "the LTX-2 video VAE (Load Checkpoint's VAE output, or Load VAE "
                        "with an LTX-2 video VAE file)")
    state = core.state_dict(keep_vars=True)
    try:
        cfg = infer_video_vae({k: tuple(v.shape) for k, v in state.items()})
    except (ConfigError, ValueError, KeyError) as exc:
        raise InputError(f"{what}: cannot read this core video VAE's layout ({exc}).") from exc
    stats = {k: v for k, v in state.items() if k.startswith("per_channel_statistics.")}
    parts: dict[str, nn.Module | None] = {}
    for part, cls in (("encoder", VideoEncoder), ("decoder", VideoDecoder)):
        names = {k[len(part) + 1:]: v for k, v in state.items() if k.startswith(part + ".")}
        parts[part] = _build_shared(lambda c=cls: c(cfg), {**names, **stats}, f"{what} ({part})") if names else None
    tiling = TilingConfig(tile_pixels=int(tile_size)) if tile_size else None
    return VideoVAEAdapter(VideoVAE(cfg, parts["encoder"], parts["decoder"]).eval(), tiling)


def audio_vae_from_core(vae: Any, config: Mapping[str, Any] | None = None) -> Any:
    """Core's audio VAE (LTXVAudioVAELoader) → our :class:`AudioVAE` on the same tensors.

    ``config``: the checkpoint's ``{"audio_vae": ..., "vocoder": ...}`` config sections. Core's object does not keep
    them and the vocoder layout cannot be read from shapes alone; without them (None) the result drives core's own
    encode / decode (:class:`~.core_audio.CoreAudioVAE`).

    Raises:
        InputError: not core's ``comfy.ldm.lightricks.vae.audio_vae.AudioVAE``; ``config`` lacks a section or is
            invalid; tensors missing or of another shape.
    """
    from ..ltx.audio import AudioDecoder, AudioEncoder, AudioVAEConfig, build_vocoder, vocoder_config_from_dict
    from ..ltx.audio.audio_vae import AudioVAE

    what = "audio_vae"
    core = _first_stage(vae, CORE_AUDIO_VAE, what, "the LTX-2 audio VAE (LTXV Audio VAE Loader, or RS LTXV Audio "
                        "VAE Loader)")
    if config is None:  # what a node has: core's object without its config → core's own encode / decode
        from .core_audio import CoreAudioVAE

        return CoreAudioVAE(vae)
    if not isinstance(config, Mapping) or "audio_vae" not in config or "vocoder" not in config:
        raise InputError(f"{what}: the audio VAE config (checkpoint metadata 'audio_vae' and 'vocoder' sections) is "
                         "needed; use RS LTXV Audio VAE Loader.")
    try:
        vae_cfg = AudioVAEConfig.from_dict(config["audio_vae"])
        voc_cfg = vocoder_config_from_dict(config["vocoder"])
    except ConfigError as exc:
        raise InputError(f"{what}: {exc}") from exc
    state = core.state_dict(keep_vars=True)
    vae_state = {k[len("autoencoder."):]: v for k, v in state.items() if k.startswith("autoencoder.")}
    stats = {k: v for k, v in vae_state.items() if k.startswith("per_channel_statistics.")}
    parts = []
    for part, cls in (("encoder", AudioEncoder), ("decoder", AudioDecoder)):
        names = {k[len(part) + 1:]: v for k, v in vae_state.items() if k.startswith(part + ".")}
        parts.append(_build_shared(lambda c=cls: c(vae_cfg), {**names, **stats}, f"{what} ({part})")
                     if names else None)
    voc_state = {k[len("vocoder."):]: v for k, v in state.items() if k.startswith("vocoder.")}
    vocoder = _build_shared(lambda: build_vocoder(voc_cfg), voc_state, f"{what} (vocoder)") if voc_state else None
    audio_vae = AudioVAE(parts[0], parts[1], vocoder)
    device = next(core.parameters()).device
    return audio_vae.to(device)  # only the mel front end's computed buffers move; shared tensors already live there


def upsampler_from_core(model: Any) -> Any:
    """Core's LatentUpscaleModelLoader output (``comfy.ldm.lightricks.latent_upsampler.LatentUpsampler``) → our
    :class:`LatentUpsampler` on the same tensors.

    Raises:
        InputError: not an LTX latent upsampler, or a layout our upsampler cannot read.
    """
    from ..ltx.loading.upsampler import infer_upsampler_config
    from ..ltx.upsampler import LatentUpsampler

    what = "upscale_model"
    if _kind(model) != CORE_UPSAMPLER:
        raise InputError(f"{what}: expected an LTX-2 latent upsampler (Load Latent Upscale Model with "
                         f"ltx-2-spatial-upscaler-x2-*.safetensors, or RS LTXV Latent Upscaler Loader); got "
                         f"{_describe(model)}.")
    state = model.state_dict(keep_vars=True)
    try:
        cfg = infer_upsampler_config(state)  # type: ignore[arg-type]
    except (ConfigError, ValueError, KeyError) as exc:
        raise InputError(f"{what}: cannot read this upsampler's layout ({exc}).") from exc
    return _build_shared(lambda: LatentUpsampler(cfg), state, what)


def padded_length(tokens: int, registers: int, minimum: int = 1024) -> int:
    """Sequence length core's connector runs at: ``tokens`` valid tokens, then registers up to a multiple of
    ``registers`` that is at least ``minimum`` (1024: core's ``comfy.ldm.lightricks.embeddings_connector.
    Embeddings1DConnector.forward``; ltx-core pads prompts to 1024 tokens with
    ``ltx_core.text_encoders.gemma.tokenizer.LTXVGemmaTokenizer``)."""
    if registers <= 0:
        return tokens
    return registers * math.ceil(max(minimum, tokens) / registers)
