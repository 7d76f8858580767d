"""Loader nodes: transformer, Gemma text encoder + text encode, video VAE, audio VAE, latent upsampler, duration
head.

Each loads with the library's own loaders (no ComfyUI LTX code) from ComfyUI's model folders, and returns the
port's object behind one of our socket types (:mod:`.specs`). Each returns a one-element tuple (ComfyUI's node
``FUNCTION`` convention). A file name not found in ComfyUI's model folders, or a file the library cannot use, raises
:class:`~rs_ltxv.ltx.errors.CheckpointError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ..ltx.errors import InputError
from ..ltx.loading import load_prompt_encoder, load_transformer, open_checkpoint
from ..ltx.pipeline.interrupt import interruptible
from ..ltx.video_vae import TilingConfig
from . import comfy_env, comfy_model, convert, specs
from .comfy_model import LTXVModule


def _placement(dtype: str, device: str):
    dev = comfy_env.device(device)
    return comfy_env.dtype(dtype, dev), dev


def load_model(ckpt_name: str, dtype: str = "auto", device: str = "default", distilled: str = "auto"):
    """→ a ComfyUI MODEL (ModelPatcher around :class:`~.comfy_model.LTXVModule`). The weights are loaded onto
    ComfyUI's offload device (memory-mapped) and moved to the GPU by ComfyUI's memory manager when a node runs.
    The counterpart of core's ``UNETLoader`` / ``CheckpointLoaderSimple`` (MODEL output).

    Raises:
        CheckpointError: ``ckpt_name`` is not in the model folders or is not an LTX-2 / 2.3 / 2.5 checkpoint.
    """
    path = comfy_env.model_path(specs.MODEL_LOADER.input("ckpt_name").folders, ckpt_name)
    ckpt = open_checkpoint(path)
    load_device, offload_device = comfy_env.model_devices(device)
    dt = comfy_env.dtype(dtype, load_device)
    is_distilled = ckpt.is_distilled if distilled == "auto" else distilled == "yes"
    module = LTXVModule(load_transformer(ckpt, dtype=dt, device=offload_device), distilled=is_distilled, source=path)
    return (comfy_model.wrap(module, load_device, offload_device),)


def load_text_encoder(text_encoder: str, ckpt_name: str, dtype: str = "auto", device: str = "default"):
    """→ our :class:`~rs_ltxv.ltx.text.encoder.PromptEncoder`: the Gemma-3 file ``text_encoder`` with the text
    projection and connectors of ``ckpt_name`` (:func:`~rs_ltxv.ltx.loading.load_prompt_encoder`). The counterpart of
    core's ``LTXAVTextEncoderLoader``.

    Raises:
        CheckpointError: a file is not in the model folders or cannot be used (see
            :func:`~rs_ltxv.ltx.loading.load_prompt_encoder`).
        ConfigError: the Gemma width does not fit the checkpoint's text projection.
    """
    gemma = comfy_env.model_path(specs.TEXT_ENCODER_LOADER.input("text_encoder").folders, text_encoder)
    ckpt = comfy_env.model_path(specs.TEXT_ENCODER_LOADER.input("ckpt_name").folders, ckpt_name)
    dt, dev = _placement(dtype, device)
    return (load_prompt_encoder(gemma, open_checkpoint(ckpt), dtype=dt, device=dev),)


def text_encode(text_encoder, text: str, cancel: Callable[[], bool] | None = None):
    """→ a CONDITIONING holding ``text``'s contexts (video ``(1, S, D_v)``, audio ``(1, S, D_a)``, mask ``(1, S)``)
    from our prompt encoder. The counterpart of core's ``CLIPTextEncode``. ``cancel`` (ComfyUI's interrupt when run
    as a node) is asked before every Gemma layer.

    Raises:
        InputError: ``text_encoder`` is not an RS LTXV Text Encoder Loader output.
        Cancelled: ``cancel()`` returned True (ComfyUI's own interrupt exception propagates as it is).
    """
    if not hasattr(text_encoder, "encode"):
        raise InputError("text_encoder: connect RS LTXV Text Encoder Loader.")
    with interruptible(text_encoder, getattr(text_encoder, "gemma", None), cancel=cancel):
        return (convert.contexts_to_conditioning(text_encoder.encode(text)),)


def load_video_vae(vae_name: str, dtype: str = "auto", device: str = "default", tile_size: int = 512,
                   decoder: str = "auto"):
    """→ our video VAE: the encoder and the chosen ``decoder`` (``vae``: the convolutional one,
    :class:`~rs_ltxv.ltx.pipeline.parts.VideoVAEAdapter`, decoding in spatial tiles of ``tile_size`` pixels, 0:
    untiled; ``diffusion``: LTX-2.5's diffusion decoder; ``auto``: the one the file holds). The counterpart of core's
    ``VAELoader``.

    Raises:
        CheckpointError: ``vae_name`` is not in the model folders or holds no LTX-2 video VAE.
        InputError: the file lacks the ``decoder`` asked for.
    """
    from ..ltx.pipeline.decoders import choose_decoder
    from ..ltx.pipeline.parts import load_video_vae_with_decoder
    from ..ltx.video_vae.diffusion import DEFAULT_DIFFUSION_TILING

    path = comfy_env.model_path(specs.VAE_LOADER.input("vae_name").folders, vae_name)
    dt, dev = _placement(dtype, device)
    choice = choose_decoder(path, decoder, "diffusion")
    base = DEFAULT_DIFFUSION_TILING if choice == "diffusion" else TilingConfig()
    tiling = replace(base, tile_pixels=int(tile_size)) if tile_size else None
    return (load_video_vae_with_decoder(path, choice, dtype=dt, device=dev, tiling=tiling),)


def load_audio_vae(audio_vae_name: str, device: str = "default"):
    """→ our :class:`~rs_ltxv.ltx.audio.AudioVAE` (encoder, decoder, vocoder) in float32. The counterpart of core's
    ``LTXVAudioVAELoader``.

    Raises:
        CheckpointError: ``audio_vae_name`` is not in the model folders or holds no audio VAE / vocoder.
    """
    import torch

    from ..ltx.loading.audio import load_audio_vae as load

    path = comfy_env.model_path(specs.AUDIO_VAE_LOADER.input("audio_vae_name").folders, audio_vae_name)
    return (load(path, dtype=torch.float32, device=comfy_env.device(device)),)


def load_upscale_model(model_name: str, dtype: str = "auto", device: str = "default"):
    """→ our :class:`~rs_ltxv.ltx.upsampler.LatentUpsampler`. The counterpart of core's
    ``LatentUpscaleModelLoader``.

    Raises:
        CheckpointError: ``model_name`` is not in the model folders or is not a latent upsampler.
    """
    from ..ltx.loading.upsampler import load_upsampler

    path = comfy_env.model_path(specs.UPSCALE_LOADER.input("model_name").folders, model_name)
    dt, dev = _placement(dtype, device)
    return (load_upsampler(path, dtype=dt, device=dev),)


def load_duration_head(head_name: str, device: str = "default"):
    """→ the LTX-2.5 duration head (:class:`~rs_ltxv.ltx.pipeline.parts.DurationHeadAdapter`, float32) of
    ``head_name`` (``ltx-2.5-duration-head-bf16.safetensors`` or a checkpoint carrying ``duration_head.*``). The
    counterpart of core's ``ModelPatchLoader`` + ``LTXVDurationPredictor``.

    Raises:
        CheckpointError: ``head_name`` is not in the model folders or holds no duration head.
    """
    import torch

    from ..ltx.loading.duration_head import load_duration_head as load
    from ..ltx.pipeline.parts import DurationHeadAdapter

    path = comfy_env.model_path(specs.DURATION_HEAD_LOADER.input("head_name").folders, head_name)
    return (DurationHeadAdapter(load(path, dtype=torch.float32, device=comfy_env.device(device))),)


RUNS = {
    specs.MODEL_LOADER.id: load_model,
    specs.TEXT_ENCODER_LOADER.id: load_text_encoder,
    specs.TEXT_ENCODE.id: text_encode,
    specs.VAE_LOADER.id: load_video_vae,
    specs.AUDIO_VAE_LOADER.id: load_audio_vae,
    specs.UPSCALE_LOADER.id: load_upscale_model,
    specs.DURATION_HEAD_LOADER.id: load_duration_head,
}
