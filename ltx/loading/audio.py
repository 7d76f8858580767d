"""Load the audio VAE (encoder, decoder) and the vocoder from the official single-file checkpoints or from audio-only
files (ComfyUI's audio-VAE files keep the same ``audio_vae.`` / ``vocoder.`` prefixes and ``config`` metadata).

Unlike :func:`open_checkpoint`, nothing here needs a transformer in the file. The config must come from
``__metadata__["config"]`` (sections ``audio_vae`` and ``vocoder``; ComfyUI asserts the same) or be passed in:
the audio VAE's STFT/mel settings cannot be read from tensor shapes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..audio import AudioDecoder, AudioEncoder, AudioVAE, AudioVAEConfig, build_vocoder, vocoder_config_from_dict
from ..audio.bwe import VocoderWithBWE
from ..audio.config import BWEVocoderConfig, VocoderConfig
from ..audio.vocoder import Vocoder
from ..errors import CheckpointError
from .layout import check_is_ltx2, split_components
from .materialize import materialize
from .resolve import resolve_config
from .safetensors_file import SafetensorsFile

# ComfyUI renames ``audio_vae.`` to ``autoencoder.`` in memory; accept files saved that way too.
_ALIASES = {"autoencoder.": "audio_vae."}
_STATS = ("std-of-means", "mean-of-means")  # other per-channel statistics in the files are unused (as in ltx-core)


@dataclass(frozen=True)
class AudioCheckpoint:
    """A validated file holding audio-VAE and/or vocoder tensors, with their configs."""

    file: SafetensorsFile
    vae: dict[str, str]  # name inside ``audio_vae.`` → file key
    vocoder: dict[str, str]  # name inside ``vocoder.`` → file key
    vae_config: AudioVAEConfig | None
    vocoder_config: VocoderConfig | BWEVocoderConfig | None

    @property
    def path(self) -> Path:
        """The file's path."""
        return self.file.path

    def part(self, prefix: str) -> dict[str, str]:
        """Name with ``prefix`` removed → file key, for the audio-VAE tensors under ``prefix`` (``"encoder."``,
        ``"decoder."``, ``"per_channel_statistics."``); empty when the file has none."""
        return {k[len(prefix):]: v for k, v in self.vae.items() if k.startswith(prefix)}


def _describe_foreign(path: Path, keys: list[str]) -> str:
    if "initial_conv.weight" in keys and any(k.startswith("post_upsample_res_blocks.") for k in keys):
        return f"{path.name} is a latent upsampler (load it with load_upsampler), not an audio VAE"
    try:
        check_is_ltx2(path.name, keys)
    except CheckpointError as exc:
        return str(exc)
    return (f"{path.name} is an LTX-2 transformer file without audio VAE / vocoder tensors (a split diffusion-model "
            "file). Load the audio VAE from the official single-file checkpoint or ComfyUI's audio VAE file.")


def open_audio_checkpoint(path: str | os.PathLike, config: dict[str, Any] | None = None) -> AudioCheckpoint:
    """Validate ``path`` and read the ``audio_vae`` / ``vocoder`` configs (``config``, a dict with those sections,
    replaces the metadata; :func:`~.resolve.resolve_config` without inference).

    Mirrors ``ltx_core.model.audio_vae.model_configurator``: the key filters ``AUDIO_VAE_ENCODER_COMFY_KEYS_FILTER``
    / ``AUDIO_VAE_DECODER_COMFY_KEYS_FILTER`` / ``VOCODER_COMFY_KEYS_FILTER`` and the config sections read by
    ``AudioEncoderConfigurator`` / ``AudioDecoderConfigurator`` / ``VocoderConfigurator``.

    Raises:
        CheckpointError: the file is missing or truncated; it holds no audio VAE / vocoder (the message says what
            it holds); a needed config section is missing or invalid; the vocoder config and tensors disagree.
    """
    path = Path(path)
    file = SafetensorsFile(path)
    keys = list(file.tensors)
    renamed = {next((new + k[len(old):] for old, new in _ALIASES.items() if k.startswith(old)), k): k for k in keys}
    groups = split_components(renamed)
    vae = {name: renamed[key] for name, key in groups.get("audio_vae", {}).items()}
    voc = {name: renamed[key] for name, key in groups.get("vocoder", {}).items()}
    if not vae and not voc:
        if groups.get("vae"):
            raise CheckpointError(f"{path.name} holds a video VAE (vae.*), not the audio VAE. The audio VAE file has "
                                  "audio_vae.* and vocoder.* tensors.")
        raise CheckpointError(_describe_foreign(path, keys) + " (no audio_vae.* or vocoder.* tensors found)")
    stored = file.config if config is None else (lambda: None)  # a given config replaces the file's

    def section(key: str, needed: bool, config_type: type | tuple[type, ...], parse: Callable[[Any], Any]) -> Any:
        if not needed:
            return None
        return resolve_config(
            path.name, None if config is None else config.get(key), stored, key=key, config_type=config_type,
            parse=parse, cannot_infer=f"the {key} config cannot be inferred from tensor shapes. Use the official "
            "LTX-2 checkpoint or ComfyUI's audio VAE file (both carry the config), or pass config={...} with the "
            "official JSON.").config

    vae_cfg = section("audio_vae", bool(vae), AudioVAEConfig, AudioVAEConfig.from_dict)
    voc_cfg = section("vocoder", bool(voc), (VocoderConfig, BWEVocoderConfig), vocoder_config_from_dict)
    if voc_cfg is not None:
        bwe_tensors = any(k.startswith("bwe_generator.") for k in voc)
        if bwe_tensors != isinstance(voc_cfg, BWEVocoderConfig):
            kinds = ("an LTX-2.3 vocoder with bandwidth extension", "an LTX-2 (HiFi-GAN) vocoder")
            raise CheckpointError(f"{path.name}: the vocoder config describes {kinds[not bwe_tensors]} but the tensors "
                                  f"are {kinds[bwe_tensors]}. The config metadata does not belong to this file.")
    return AudioCheckpoint(file=file, vae=vae, vocoder=voc, vae_config=vae_cfg, vocoder_config=voc_cfg)


def _as_audio(source: str | os.PathLike | AudioCheckpoint) -> AudioCheckpoint:
    return source if isinstance(source, AudioCheckpoint) else open_audio_checkpoint(source)


def _load_vae_part(ckpt: AudioCheckpoint, part: str, cls: type, dtype: torch.dtype | None,
                   device: str | torch.device) -> Any:
    """The audio VAE ``part`` ("encoder" / "decoder") with the statistics; :class:`CheckpointError` when the file
    lacks either."""
    names = ckpt.part(f"{part}.")
    if not names:
        raise CheckpointError(f"{ckpt.path.name} has no audio_vae.{part}.* tensors, so it cannot {part[:-2]}e audio.")
    stats = ckpt.part("per_channel_statistics.")
    missing = [s for s in _STATS if s not in stats]
    if missing:
        raise CheckpointError(f"{ckpt.path.name} has no audio_vae.per_channel_statistics.{missing[0]} tensor; the "
                              "audio latents cannot be (un)normalised. The file is incomplete.")
    names.update({f"per_channel_statistics.{s}": stats[s] for s in _STATS})
    return materialize(lambda: cls(ckpt.vae_config), ckpt.file, names, what=f"audio VAE {part}", dtype=dtype,
                       device=device)


def load_audio_encoder(source: str | os.PathLike | AudioCheckpoint, *, dtype: torch.dtype | None = None,
                       device: str | torch.device = "cpu") -> AudioEncoder:
    """Log-mel → latent encoder (``audio_vae.encoder.*`` + per-channel statistics) in ``dtype`` (None: as stored)
    on ``device``, from a path or :func:`open_audio_checkpoint`'s result.

    Mirrors ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder`` with
    ``ltx_core.model.audio_vae.model_configurator.AudioEncoderConfigurator`` and
    ``AUDIO_VAE_ENCODER_COMFY_KEYS_FILTER``.

    Raises:
        CheckpointError: see :func:`open_audio_checkpoint`; no encoder or statistics; tensors not matching the config.
    """
    return _load_vae_part(_as_audio(source), "encoder", AudioEncoder, dtype, device)


def load_audio_decoder(source: str | os.PathLike | AudioCheckpoint, *, dtype: torch.dtype | None = None,
                       device: str | torch.device = "cpu") -> AudioDecoder:
    """Latent → log-mel decoder (``audio_vae.decoder.*`` + per-channel statistics) in ``dtype`` (None: as stored)
    on ``device``, from a path or :func:`open_audio_checkpoint`'s result.

    Mirrors ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder`` with
    ``ltx_core.model.audio_vae.model_configurator.AudioDecoderConfigurator`` and
    ``AUDIO_VAE_DECODER_COMFY_KEYS_FILTER``.

    Raises:
        CheckpointError: see :func:`open_audio_checkpoint`; no decoder or statistics; tensors not matching the config.
    """
    return _load_vae_part(_as_audio(source), "decoder", AudioDecoder, dtype, device)


def load_vocoder(source: str | os.PathLike | AudioCheckpoint, *, dtype: torch.dtype | None = None,
                 device: str | torch.device = "cpu") -> Vocoder | VocoderWithBWE:
    """Log-mel → waveform: LTX-2 HiFi-GAN (24 kHz) or LTX-2.3 BigVGAN-v2 + bandwidth extension (48 kHz), in
    ``dtype`` (None: as stored) on ``device``.

    Mirrors ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder`` with
    ``ltx_core.model.audio_vae.model_configurator.VocoderConfigurator`` and ``VOCODER_COMFY_KEYS_FILTER``.

    Raises:
        CheckpointError: see :func:`open_audio_checkpoint`; no vocoder tensors; tensors not matching the config.
    """
    ckpt = _as_audio(source)
    if not ckpt.vocoder:
        raise CheckpointError(f"{ckpt.path.name} has no vocoder.* tensors; decoding audio to a waveform needs them.")
    cfg = ckpt.vocoder_config
    model = materialize(lambda: build_vocoder(cfg), ckpt.file, ckpt.vocoder, what="vocoder", dtype=dtype,
                        device=device)
    return model.to(torch.device(device))  # moves the computed (non-checkpoint) resampler taps


def load_audio_vae(source: str | os.PathLike | AudioCheckpoint, *, dtype: torch.dtype | None = None,
                   device: str | torch.device = "cpu") -> AudioVAE:
    """Everything the file has: encoder, decoder and vocoder (missing parts are None), with the mel front end, in
    ``dtype`` (None: as stored) on ``device``. ltx-core builds the three separately (:func:`load_audio_encoder`,
    :func:`load_audio_decoder`, :func:`load_vocoder`).

    Raises:
        CheckpointError: see :func:`open_audio_checkpoint`; none of the three is in the file.
    """
    ckpt = _as_audio(source)
    enc = load_audio_encoder(ckpt, dtype=dtype, device=device) if ckpt.part("encoder.") else None
    dec = load_audio_decoder(ckpt, dtype=dtype, device=device) if ckpt.part("decoder.") else None
    voc = load_vocoder(ckpt, dtype=dtype, device=device) if ckpt.vocoder else None
    if enc is None and dec is None and voc is None:
        raise CheckpointError(f"{ckpt.path.name} has no audio VAE encoder, decoder or vocoder tensors.")
    return AudioVAE(enc, dec, voc).to(torch.device(device))
