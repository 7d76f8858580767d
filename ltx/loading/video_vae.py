"""Open a video VAE from an LTX-2 / LTX-2.3 file and load its encoder and/or decoder.

Accepted files:

* the official single files (``vae.encoder.*``, ``vae.decoder.*``, ``vae.per_channel_statistics.*``; config from
  ``__metadata__["config"]["vae"]``) — a transformer is not required;
* ComfyUI's split VAE files (the same names without ``vae.``); config from metadata when present, otherwise inferred
  from names and shapes (:mod:`.video_vae_infer`);
* LTX-2.5's ``CausalDiffusionVAE`` files: the conv encoder from the nested ``vae.encoder`` section, the diffusion
  decoder through :mod:`.diffusion_decoder`.

Only ``mean-of-means`` and ``std-of-means`` of the statistics are used (the files also carry ``channel`` and
``mean-of-stds``). Both halves read the same statistics tensors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError, InputError
from ..video_vae.config import VideoVAEConfig
from ..video_vae.decoder import VideoDecoder
from ..video_vae.diffusion.config import encoder_vae_config, is_diffusion_vae_section
from ..video_vae.encoder import VideoEncoder
from ..video_vae.vae import VideoVAE
from .diffusion_decoder import diffusion_decoder_prefix, load_diffusion_decoder
from .layout import FOREIGN_HINTS, strip_diffusion_prefix
from .materialize import materialize
from .resolve import ConfigSource, resolve_config
from .safetensors_file import SafetensorsFile
from .video_vae_infer import infer_video_vae

PARTS = ("encoder", "decoder")
DECODER_KINDS = ("auto", "vae", "diffusion")
STATS = ("mean-of-means", "std-of-means")
_STATS_PREFIX = "per_channel_statistics."


@dataclass(frozen=True)
class VideoVAECheckpoint:
    """A validated file holding a video VAE: ``names`` maps VAE-relative names (``encoder.…``, ``decoder.…``,
    ``per_channel_statistics.…``) to file keys."""

    file: SafetensorsFile
    names: dict[str, str]
    config: VideoVAEConfig
    config_source: ConfigSource

    @property
    def path(self) -> Path:
        """The file's path."""
        return self.file.path

    def has(self, part: str) -> bool:
        """Whether the file holds ``part`` ("encoder" / "decoder"), told by its ``conv_in`` weight."""
        return f"{part}.conv_in.conv.weight" in self.names

    def part_names(self, part: str) -> dict[str, str]:
        """Module name → file key for ``part`` ("encoder"/"decoder"), statistics included."""
        names = {k[len(part) + 1:]: v for k, v in self.names.items() if k.startswith(part + ".")}
        names.update({_STATS_PREFIX + s: self.names[_STATS_PREFIX + s] for s in STATS
                      if _STATS_PREFIX + s in self.names})
        return names


def _vae_names(path: Path, keys: list[str]) -> dict[str, str]:
    """VAE-relative name → file key, for official (``vae.``) or split (no prefix) files.

    Raises:
        CheckpointError: no video VAE tensors; the message says what the file holds instead.
    """
    if any(k.startswith("vae.") for k in keys):
        return {k[len("vae."):]: k for k in keys if k.startswith("vae.")}
    split = {k: k for k in keys if k.startswith(("encoder.", "decoder.", _STATS_PREFIX))}
    if any(k.startswith(("decoder.up_blocks.", "encoder.down_blocks.", "decoder.det_stages.")) for k in split):
        return split
    names = {strip_diffusion_prefix(k) for k in keys}
    if "patchify_proj.weight" in names:
        raise CheckpointError(f"{path.name} holds a diffusion model but no video VAE ('vae.*' tensors). Load the "
                              "VAE from the official single-file checkpoint or a separate VAE file.")
    if any(k.startswith(("audio_vae.", "vocoder.")) for k in keys) or any(
            k.startswith(("decoder.up.", "encoder.down.")) for k in keys):
        raise CheckpointError(f"{path.name} looks like the LTX-2 audio VAE / vocoder, not the video VAE.")
    for needle, what in FOREIGN_HINTS:
        if any(needle in k for k in names):
            raise CheckpointError(f"{path.name} looks like {what}, not an LTX-2 video VAE.")
    sample = ", ".join(sorted(keys)[:5]) or "no tensors"
    raise CheckpointError(f"{path.name} has no LTX-2 video VAE tensors (expected 'vae.decoder.*' or "
                          f"'decoder.up_blocks.*'; first keys: {sample}).")


def open_video_vae(path: str | os.PathLike, config: VideoVAEConfig | dict | None = None) -> VideoVAECheckpoint:
    """Validate ``path`` and work out the VAE config (given → metadata ``config["vae"]`` → inferred from shapes,
    :func:`~.resolve.resolve_config`).

    Mirrors ``ltx_core.model.video_vae.model_configurator``: the key filters ``VAE_ENCODER_COMFY_KEYS_FILTER`` /
    ``VAE_DECODER_COMFY_KEYS_FILTER`` and the ``vae`` section read by ``VideoEncoderConfigurator`` /
    ``VideoDecoderConfigurator``, plus the inference ltx-core does not have.

    Raises:
        CheckpointError: a GGUF file; the file is missing or truncated; it holds no video VAE (the message says
            what it holds); the config is invalid or cannot be inferred.
    """
    path = Path(path)
    if path.suffix.lower() == ".gguf":
        raise CheckpointError(f"{path.name} is a GGUF file; the video VAE is loaded from .safetensors files.")
    file = SafetensorsFile(path)
    all_names = _vae_names(path, list(file.tensors))
    diffusion = diffusion_decoder_prefix(list(file.tensors)) is not None  # LTX-2.5: load_diffusion_decoder's part
    names = {k: v for k, v in all_names.items() if (not k.startswith(_STATS_PREFIX) or k[len(_STATS_PREFIX):] in
                                                     STATS) and not (diffusion and k.startswith("decoder."))}
    resolved = resolve_config(
        path.name, config, lambda: _conv_sections(file.config()), key="vae", config_type=VideoVAEConfig,
        parse=VideoVAEConfig.from_dict,
        infer=lambda: infer_video_vae({k: file.tensors[v].shape for k, v in names.items()}))
    return VideoVAECheckpoint(file=file, names=names, config=resolved.config, config_source=resolved.source)


def _conv_sections(config: dict | None) -> dict | None:
    """The stored config with an LTX-2.5 ``CausalDiffusionVAE`` section replaced by its conv encoder's flat section
    (ltx-core 1.2.0 ``_prepare_video_encoder_kwargs``); the diffusion decoder is :func:`load_diffusion_decoder`'s."""
    section = config.get("vae") if isinstance(config, dict) else None
    if not is_diffusion_vae_section(section):
        return config
    encoder = section.get("encoder") or {"out_channels": section.get("latent_channels", 128)}
    return {**config, "vae": encoder_vae_config(encoder).to_dict()}


def _as_checkpoint(source: str | os.PathLike | VideoVAECheckpoint) -> VideoVAECheckpoint:
    return source if isinstance(source, VideoVAECheckpoint) else open_video_vae(source)


def _load(ckpt: VideoVAECheckpoint, part: str, dtype: torch.dtype | None, device: str | torch.device):
    """The video VAE ``part`` ("encoder" / "decoder"); :class:`CheckpointError` when the file lacks it or its
    tensors do not match the config."""
    if not ckpt.has(part) and part == "decoder" and diffusion_decoder_prefix(list(ckpt.file.tensors)):
        raise CheckpointError(f"{ckpt.path.name} holds LTX-2.5's diffusion video decoder, not the convolutional one: "
                              "load it with load_video_vae(decoder='auto' or 'diffusion') or load_diffusion_decoder, "
                              "or use ltx-2.5-video-vae-conv-bf16.safetensors for the convolutional decoder.")
    if not ckpt.has(part):
        raise CheckpointError(f"{ckpt.path.name} has no video VAE {part} ('{part}.conv_in.conv.weight' is missing); "
                              f"use a file that contains the {part}.")
    factory = {"encoder": VideoEncoder, "decoder": VideoDecoder}[part]
    return materialize(lambda: factory(ckpt.config), ckpt.file, ckpt.part_names(part), what=f"video VAE {part}",
                       dtype=dtype, device=device)


def load_video_encoder(source: str | os.PathLike | VideoVAECheckpoint, *, dtype: torch.dtype | None = None,
                       device: str | torch.device = "cpu") -> VideoEncoder:
    """The video encoder in ``dtype`` (None: as stored) on ``device``, from a path or :func:`open_video_vae`'s result.

    Mirrors ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder`` with
    ``ltx_core.model.video_vae.model_configurator.VideoEncoderConfigurator`` and ``VAE_ENCODER_COMFY_KEYS_FILTER``.

    Raises:
        CheckpointError: see :func:`open_video_vae`; the file has no encoder, or its tensors do not match the config.
    """
    return _load(_as_checkpoint(source), "encoder", dtype, device)


def load_video_decoder(source: str | os.PathLike | VideoVAECheckpoint, *, dtype: torch.dtype | None = None,
                       device: str | torch.device = "cpu") -> VideoDecoder:
    """The video decoder in ``dtype`` (None: as stored) on ``device``, from a path or :func:`open_video_vae`'s result.

    Mirrors ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder`` with
    ``ltx_core.model.video_vae.model_configurator.VideoDecoderConfigurator`` and ``VAE_DECODER_COMFY_KEYS_FILTER``.

    Raises:
        CheckpointError: see :func:`open_video_vae`; the file has no decoder, or its tensors do not match the config.
    """
    return _load(_as_checkpoint(source), "decoder", dtype, device)


def load_video_vae(source: str | os.PathLike | VideoVAECheckpoint, *, dtype: torch.dtype | None = None,
                   device: str | torch.device = "cpu", decoder: str = "auto") -> VideoVAE:
    """Encoder and decoder in ``dtype`` (None: as stored) on ``device`` (a half missing from the file is None; using
    it raises a clear error). ltx-core builds the two halves separately (:func:`load_video_encoder`,
    :func:`load_video_decoder`). ``decoder``: "auto" (what the file holds: LTX-2.5's diffusion decoder,
    :func:`load_diffusion_decoder`, or the convolutional one), "vae" (convolutional) or "diffusion"; asking for a
    kind the file does not hold is an error.

    Raises:
        CheckpointError: see :func:`open_video_vae`; the tensors do not match the config; the file lacks the
            requested decoder kind.
        InputError: ``decoder`` is not "auto", "vae" or "diffusion".
    """
    if decoder not in DECODER_KINDS:
        raise InputError(f"decoder={decoder!r}: choose one of {', '.join(DECODER_KINDS)}.")
    ckpt = _as_checkpoint(source)
    parts = {p: _load(ckpt, p, dtype, device) if ckpt.has(p) and (p == "encoder" or decoder != "diffusion") else None
             for p in PARTS}
    if decoder != "vae" and diffusion_decoder_prefix(list(ckpt.file.tensors)) is not None:
        parts["decoder"] = load_diffusion_decoder(ckpt.path, dtype=dtype, device=device)
    elif decoder == "diffusion":
        raise CheckpointError(f"{ckpt.path.name} has no LTX-2.5 diffusion video decoder; use "
                              "ltx-2.5-video-vae-bf16.safetensors (decoder='auto' takes the decoder a file holds).")
    elif decoder == "vae" and parts["decoder"] is None:
        _load(ckpt, "decoder", dtype, device)  # raises, saying what the file holds
    return VideoVAE(ckpt.config, parts["encoder"], parts["decoder"]).eval()
