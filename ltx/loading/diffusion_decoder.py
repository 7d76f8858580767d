"""Find and load LTX-2.5's diffusion video decoder.

Where it lives (LTX-2.5 release, ``Lightricks/LTX-2.5`` on Hugging Face, as ltx-pipelines 1.2.0's README lists it):

* ``vae/ltx-2.5-video-vae-bf16.safetensors`` — the diffusion decoder (``NADiffusionDecoder``) with the conv
  encoder and the latent statistics, under bare names (``decoder.*``, ``encoder.*``, ``per_channel_statistics.*``)
  and ``config["vae"]["_class_name"] = "CausalDiffusionVAE"``;
* ``vae/ltx-2.5-video-vae-conv-bf16.safetensors`` — the convolutional decoder instead (``CausalVideoAutoencoder``;
  load it with :func:`~.video_vae.load_video_vae`);
* a single file bundling everything (LTX-2.3 style) names it ``vae.decoder.*`` / ``vae.per_channel_statistics.*``.

The decoder's tensors load under their stored names (fused ``qkv``, ``t_embedder.mlp.{0,2}``, static ``gate_*`` of
older standalone files kept as stored); the bundled preview head (``coarse_*``) and ``type_emb``, which the decoder
does not use, are skipped. The config comes from the metadata (:meth:`DiffusionDecoderConfig.from_dict`), otherwise
from the tensor shapes with the released model's kernels, strides and schedule.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..video_vae.diffusion import DiffusionDecoderConfig, DiffusionVideoDecoder, is_diffusion_vae_section
from ..video_vae.diffusion.config import GATE_NAMES
from .layout import FOREIGN_HINTS, strip_diffusion_prefix
from .materialize import materialize
from .resolve import ConfigSource, resolve_config
from .safetensors_file import SafetensorsFile

#: where the decoder's tensors sit: single file, then the standalone / ComfyUI-split VAE file
PREFIXES = ("vae.decoder.", "decoder.")
#: decoder tensors the file may carry that the decoder does not use (preview head, an unused embedding)
SKIPPED = ("coarse_", "type_emb")
STATS = ("mean-of-means", "std-of-means")
RELEASED_FILE = "ltx-2.5-video-vae-bf16.safetensors"
CONV_FILE = "ltx-2.5-video-vae-conv-bf16.safetensors"


def diffusion_decoder_prefix(keys: list[str] | Mapping[str, Any]) -> str | None:
    """``"vae.decoder."`` or ``"decoder."`` when tensors of a diffusion decoder (``det_stages.*`` /
    ``diff_blocks.*``) sit under it, else None."""
    for prefix in PREFIXES:
        if any(k.startswith((f"{prefix}det_stages.", f"{prefix}diff_blocks.")) for k in keys):
            return prefix
    return None


@dataclass(frozen=True)
class DiffusionDecoderCheckpoint:
    """A validated file holding a diffusion decoder: ``names`` maps module names (:class:`DiffusionVideoDecoder`'s
    state dict, statistics included) to file keys."""

    file: SafetensorsFile
    names: dict[str, str]
    config: DiffusionDecoderConfig
    config_source: ConfigSource

    @property
    def path(self) -> Path:
        """The file's path."""
        return self.file.path


def _not_a_diffusion_decoder(path: Path, keys: list[str]) -> CheckpointError:
    """The error for a file without a diffusion decoder, saying what it holds instead."""
    if any(k.startswith(("vae.decoder.up_blocks.", "decoder.up_blocks.")) or k in (
            "vae.decoder.conv_in.conv.weight", "decoder.conv_in.conv.weight") for k in keys):
        return CheckpointError(f"{path.name} holds the convolutional video decoder (LTX-2 / LTX-2.3, or LTX-2.5's "
                               f"{CONV_FILE}), not LTX-2.5's diffusion decoder. Load it as a video VAE, or use "
                               f"{RELEASED_FILE} for the diffusion decoder.")
    if any(k.startswith(("vae.encoder.", "encoder.")) for k in keys):
        return CheckpointError(f"{path.name} holds a video VAE encoder but no decoder; use {RELEASED_FILE}.")
    names = {strip_diffusion_prefix(k) for k in keys}
    if "patchify_proj.weight" in names:
        return CheckpointError(f"{path.name} holds the transformer but no diffusion video decoder; LTX-2.5 ships it "
                               f"as vae/{RELEASED_FILE}.")
    if any(k.startswith(("audio_vae.", "vocoder.", "decoder.up.")) for k in keys):
        return CheckpointError(f"{path.name} looks like the LTX-2 audio VAE / vocoder, not a video VAE.")
    for needle, what in FOREIGN_HINTS:
        if any(needle in k for k in names):
            return CheckpointError(f"{path.name} looks like {what}, not an LTX-2.5 video VAE.")
    sample = ", ".join(sorted(keys)[:5]) or "no tensors"
    return CheckpointError(f"{path.name} has no LTX-2.5 diffusion video decoder (expected 'decoder.det_stages.*' or "
                           f"'vae.decoder.det_stages.*'; first keys: {sample}).")


def _stored(file: SafetensorsFile) -> dict[str, Any] | None:
    """The file's config with its ``vae`` section when that section describes a diffusion VAE, else None."""
    config = file.config()
    section = config.get("vae") if isinstance(config, Mapping) else None
    return {"vae": section} if is_diffusion_vae_section(section) else None


def _count(shapes: Mapping[str, tuple[int, ...]], pattern: str) -> int:
    found = {int(m.group(1)) for k in shapes if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def infer_diffusion_decoder(shapes: Mapping[str, tuple[int, ...]]) -> DiffusionDecoderConfig:
    """Config from module name → tensor shape (a file without metadata): widths, depths, head width, patch size,
    time-embedding width and channel reductions from the shapes; kernels, strides (checked against the shapes),
    3 output channels and the x0 single-step schedule are the released model's.

    Raises:
        CheckpointError: a tensor the inference needs is missing, or the shapes do not fit the released strides.
    """
    released = DiffusionDecoderConfig()

    def shape(name: str) -> tuple[int, ...]:
        if name not in shapes:
            raise CheckpointError(f"cannot infer the diffusion decoder's config: {name} is missing. Use the "
                                  "official file (it carries the config in its metadata).")
        return tuple(shapes[name])

    stages = _count(shapes, r"upsamples\.(\d+)\.proj\.weight$")
    depths = [_count(shapes, rf"det_stages\.{s}\.(\d+)\.") for s in range(stages)]
    depths.append(_count(shapes, r"diff_blocks\.(\d+)\."))
    widths = [shape("conv_in.weight")[0]]
    for s in range(stages):
        nxt = f"det_stages.{s + 1}.0.norm1.weight" if s + 1 < stages else "diff_blocks.0.context_proj.weight"
        widths.append(shape(nxt)[0] if s + 1 < stages else shape(nxt)[1])
    if stages != len(released.upsample_strides):
        raise CheckpointError(f"cannot infer the diffusion decoder's config: {stages} upsamples, the released model "
                              f"has {len(released.upsample_strides)}; the file needs its config metadata.")
    for s, stride in enumerate(released.upsample_strides):
        if shape(f"upsamples.{s}.proj.weight")[0] != math.prod(stride) * widths[s + 1]:
            raise CheckpointError("cannot infer the diffusion decoder's strides from the shapes (they differ from the "
                                  "released model's); the file needs its config metadata.")
    head = next((shapes[k][0] for k in sorted(shapes) if k.endswith(".attn.q_norm.weight")), None)
    c5, pixels = shape("conv_in_x_t.weight")
    patch = math.isqrt(pixels // 3)
    gates = {k.rpartition(".")[2] for k in shapes if k.startswith("diff_blocks.")} & set(GATE_NAMES)
    return DiffusionDecoderConfig(
        latent_channels=shape("conv_in.weight")[1], patch_size=patch, head_dim=head or released.head_dim,
        stage_channels=tuple(widths), stage_depths=tuple(depths),
        upsample_reductions=tuple(widths[s] // widths[s + 1] for s in range(stages)), stage5_channels=c5,
        t_emb_dim=shape("t_embedder.mlp.0.weight")[0], gates=tuple(g for g in GATE_NAMES if g in gates))


def open_diffusion_decoder(path: str | os.PathLike,
                           config: DiffusionDecoderConfig | dict | None = None) -> DiffusionDecoderCheckpoint:
    """Validate ``path`` and work out the decoder's config (given → metadata ``config["vae"]`` of a
    ``CausalDiffusionVAE`` → inferred from shapes); the gates come from the tensors.

    Mirrors ``ltx_core.model.video_vae.model_configurator.VideoDecoderConfigurator`` with
    ``video_decoder_sd_ops_for_checkpoint`` (``is_diffusion_video_vae``, the ``vae.decoder.`` / ``decoder.`` key
    filter), keeping the stored names.

    Raises:
        CheckpointError: a GGUF file; the file is missing or truncated; it holds no diffusion decoder (the message
            says what it holds); the config is invalid or cannot be inferred.
    """
    path = Path(path)
    if path.suffix.lower() == ".gguf":
        raise CheckpointError(f"{path.name} is a GGUF file; the video VAE is loaded from .safetensors files.")
    file = SafetensorsFile(path)
    keys = list(file.tensors)
    prefix = diffusion_decoder_prefix(keys)
    if prefix is None:
        raise _not_a_diffusion_decoder(path, keys)
    names = {k[len(prefix):]: k for k in keys if k.startswith(prefix) and not k[len(prefix):].startswith(SKIPPED)}
    stats = "vae.per_channel_statistics." if prefix == "vae.decoder." else "per_channel_statistics."
    names.update({f"per_channel_statistics.{s}": stats + s for s in STATS if stats + s in file.tensors})
    gates = tuple(g for g in GATE_NAMES if any(n.startswith("diff_blocks.") and n.endswith("." + g) for n in names))
    resolved = resolve_config(
        path.name, config, lambda: _stored(file), key="vae", config_type=DiffusionDecoderConfig,
        parse=DiffusionDecoderConfig.from_dict,
        infer=lambda: infer_diffusion_decoder({n: file.tensors[k].shape for n, k in names.items()}))
    return DiffusionDecoderCheckpoint(file=file, names=names, config=resolved.config.with_gates(gates),
                                      config_source=resolved.source)


def load_diffusion_decoder(source: str | os.PathLike | DiffusionDecoderCheckpoint, *,
                           dtype: torch.dtype | None = None,
                           device: str | torch.device = "cpu") -> DiffusionVideoDecoder:
    """The diffusion video decoder in ``dtype`` (None: as stored) on ``device``, from a path or
    :func:`open_diffusion_decoder`'s result; built on the meta device and filled tensor by tensor.

    Mirrors ``ltx_core.loader.single_gpu_model_builder.SingleGPUModelBuilder`` with
    ``ltx_core.model.video_vae.model_configurator.VideoDecoderConfigurator`` for a diffusion VAE.

    Raises:
        CheckpointError: see :func:`open_diffusion_decoder`; tensors missing (the latent statistics too), unexpected
            or of the wrong shape for the config.
    """
    ckpt = source if isinstance(source, DiffusionDecoderCheckpoint) else open_diffusion_decoder(source)
    return materialize(lambda: DiffusionVideoDecoder(ckpt.config), ckpt.file, ckpt.names,
                       what="diffusion video decoder", dtype=dtype, device=device)


def is_diffusion_vae_file(path: str | os.PathLike) -> bool:
    """Whether a ``.safetensors`` file holds a diffusion video decoder (its tensors, or its metadata's
    ``vae._class_name``; ltx-core 1.2.0 ``model_configurator.is_diffusion_video_vae`` reads only the latter).

    Raises:
        CheckpointError: the file is missing, truncated or not a readable ``.safetensors`` file.
    """
    file = SafetensorsFile(path)
    return diffusion_decoder_prefix(list(file.tensors)) is not None or _stored(file) is not None
