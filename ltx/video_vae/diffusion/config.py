"""Typed config of LTX-2.5's diffusion video decoder, read from a VAE file's ``config["vae"]`` section.

A diffusion VAE file says ``"_class_name": "CausalDiffusionVAE"`` at the top of its ``vae`` section (anything but
``CausalVideoAutoencoder`` means diffusion to ltx-core); the decoder's settings are nested under ``vae.decoder``
(``"_class_name": "NADiffusionDecoder"``), the conv encoder's under ``vae.encoder``, and ``model_output_type`` sits
at the top of the section. Keys the section leaves out take ltx-core 1.2.0's configurator defaults
(``ltx_core.model.video_vae.model_configurator._build_diffusion_video_decoder``); the dataclass defaults are the
released model's values (``ltx-2.5-video-vae-bf16.safetensors``, the same as diffusers 0.42.1's
``LTX2VideoDiffusionDecoderModel`` defaults):

=================================  ================================  ==================================
field                              released (dataclass default)      missing key (ltx-core 1.2.0)
=================================  ================================  ==================================
``stage_channels``                 2048, 1024, 512, 512, 256         1024, 512, 256, 256, 128
``stage_depths``                   4, 6, 4, 2, 8                     4, 6, 4, 2, 8
``stage_kernels`` (stages 1-4)     (3,7,7), (3,7,7), (3,5,5), (3,5,5)  same
``stage5_kernel``                  (11, 11, 11)                      (3, 7, 7)
``timestep_scale_multiplier``      1000                              1
``num_inference_steps``            1                                 2
``model_output_type``              x0                                v
=================================  ================================  ==================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ...errors import ConfigError
from ..config import VideoVAEConfig

CONV_VAE_CLASS = "CausalVideoAutoencoder"
DIFFUSION_VAE_CLASS = "CausalDiffusionVAE"
DECODER_CLASS = "NADiffusionDecoder"
OUTPUT_TYPES = ("x0", "v")
#: static gates a diffusion block of an older standalone file may carry (``gate_ctx`` is optional there)
GATE_NAMES = ("gate_msa", "gate_mlp", "gate_ctx")

Triple = tuple[int, int, int]


def is_diffusion_vae_section(vae: Mapping[str, Any] | None) -> bool:
    """Whether a ``config["vae"]`` section describes a diffusion VAE: its ``_class_name`` is present and is not
    ``CausalVideoAutoencoder`` (ltx-core 1.2.0 ``model_configurator.is_diffusion_video_vae``; a section without the
    name is a conv VAE)."""
    return isinstance(vae, Mapping) and vae.get("_class_name", CONV_VAE_CLASS) != CONV_VAE_CLASS


@dataclass(frozen=True)
class DiffusionDecoderConfig:
    """The diffusion video decoder: four deterministic neighbourhood-attention stages upsample the latent into a
    context volume, the fifth denoises patchified pixels conditioned on it.

    ``stage_channels`` / ``stage_depths`` have five entries (stages 1-4 and stage 5's context width / block count),
    ``stage_kernels`` the (T, H, W) neighbourhoods of stages 1-4, ``upsample_strides`` / ``upsample_reductions`` the
    (T, H, W) pixel-shuffle stride and channel reduction after each of stages 1-4, ``stage5_channels`` the width of
    the denoising blocks (the context width unless a file says otherwise). ``gates`` lists the static per-channel
    gates the denoising blocks carry (none in the released file; older standalone files have them): it comes from
    the tensors, not the metadata.

    Mirrors what ``ltx_core.model.video_vae.model_configurator._build_diffusion_video_decoder`` reads (diffusers:
    ``diffusers.models.autoencoders.ltx2_diffusion_decoder.LTX2VideoDiffusionDecoderModel``'s config).
    """

    latent_channels: int = 128
    out_channels: int = 3
    patch_size: int = 4
    head_dim: int = 64
    stage_channels: tuple[int, ...] = (2048, 1024, 512, 512, 256)
    stage_depths: tuple[int, ...] = (4, 6, 4, 2, 8)
    stage_kernels: tuple[Triple, ...] = ((3, 7, 7), (3, 7, 7), (3, 5, 5), (3, 5, 5))
    upsample_strides: tuple[Triple, ...] = ((1, 2, 2), (2, 1, 1), (2, 2, 2), (2, 2, 2))
    upsample_reductions: tuple[int, ...] = (2, 2, 1, 2)
    stage5_kernel: Triple = (11, 11, 11)
    stage5_channels: int = 256
    t_emb_dim: int = 384
    timestep_scale_multiplier: float = 1000.0
    model_output_type: str = "x0"
    num_inference_steps: int = 1
    gates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------------------------------------ geometry
    @property
    def context_channels(self) -> int:
        """Width of the stage-4 output (the context stage 5 is conditioned on)."""
        return self.stage_channels[-1]

    @property
    def temporal_upsampling(self) -> int:
        """Pixel frames per latent frame (8 released): the product of the temporal strides."""
        return math.prod(s[0] for s in self.upsample_strides)

    @property
    def spatial_upsampling(self) -> int:
        """Pixels per latent cell (32 released): the spatial strides times the patch size."""
        return math.prod(s[1] for s in self.upsample_strides) * self.patch_size

    @property
    def trailing_pad_frames(self) -> int:
        """Latent frames appended (copies of the last one) before stage 1 and cropped before stage 5, so that the
        neighbourhood window of the last real frames is not shifted inward: ``(stage-1 K_t // 2) · 2``."""
        return (self.stage_kernels[0][0] // 2) * 2

    @property
    def min_latent_size(self) -> Triple:
        """Smallest latent (F, H, W) every stage's window fits in; smaller latents are edge-padded first.

        Mirrors ``ltx_core.model.video_vae.diffusion_tiling.all_stages_min_tile_size``."""
        mins = [1, 1, 1]
        cumulative = (1, 1, 1)
        for kernel, stride in zip((*self.stage_kernels, self.stage5_kernel), (*self.upsample_strides, None),
                                  strict=True):
            for axis in range(3):
                mins[axis] = max(mins[axis], -(-kernel[axis] // cumulative[axis]))
            if stride is not None:
                cumulative = tuple(c * s for c, s in zip(cumulative, stride, strict=True))
        return (mins[0], mins[1], mins[2])

    def mlp_hidden(self, dim: int) -> int:
        """SwiGLU hidden width of a ``dim``-wide block: ``4·dim`` rounded up to a multiple of 16."""
        return (dim * 4 + 15) // 16 * 16

    # ------------------------------------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check that the stages fit together.

        Raises:
            ConfigError: list lengths that do not match, widths not divisible by ``head_dim``, a stage width that is
                not the previous one divided by its reduction, temporal strides other than 1 or 2, an unknown
                ``model_output_type`` or gate name, or a head width too small for the 3-D rotary split.
        """
        n = len(self.stage_channels)
        if n < 2 or len(self.stage_depths) != n or len(self.stage_kernels) != n - 1 or \
                len(self.upsample_strides) != n - 1 or len(self.upsample_reductions) != n - 1:
            raise ConfigError(f"diffusion decoder: {n} stage_channels need {n} stage_depths and {n - 1} stage "
                              f"kernels / upsamples (got {len(self.stage_depths)}, {len(self.stage_kernels)}, "
                              f"{len(self.upsample_strides)}).")
        for i, reduction in enumerate(self.upsample_reductions):
            if reduction < 1 or self.stage_channels[i] % reduction or \
                    self.stage_channels[i + 1] != self.stage_channels[i] // reduction:
                raise ConfigError(f"diffusion decoder: stage_channels[{i + 1}] = {self.stage_channels[i + 1]} is not "
                                  f"stage_channels[{i}] / reduction ({self.stage_channels[i]} / {reduction}).")
        widths = (*self.stage_channels, self.stage5_channels)
        if self.head_dim < 16 or self.head_dim % 8 or any(c < 1 or c % self.head_dim for c in widths):
            raise ConfigError(f"diffusion decoder: head_dim {self.head_dim} must be a multiple of 8 (≥ 16) dividing "
                              f"every stage width {widths}.")
        if any(s[0] not in (1, 2) or min(s) < 1 for s in self.upsample_strides):
            raise ConfigError(f"diffusion decoder: upsample strides {self.upsample_strides}: temporal strides must be "
                              "1 or 2 and spatial strides ≥ 1.")
        if any(min(k) < 1 for k in (*self.stage_kernels, self.stage5_kernel)) or min(self.stage_depths) < 0:
            raise ConfigError("diffusion decoder: kernels must be ≥ 1 and depths ≥ 0.")
        if self.model_output_type not in OUTPUT_TYPES:
            raise ConfigError(f"diffusion decoder: model_output_type {self.model_output_type!r} is not one of "
                              f"{OUTPUT_TYPES}.")
        if self.num_inference_steps < 1:
            raise ConfigError(f"diffusion decoder: default_num_inference_steps must be ≥ 1, got "
                              f"{self.num_inference_steps}.")
        unknown = [g for g in self.gates if g not in GATE_NAMES]
        if unknown:
            raise ConfigError(f"diffusion decoder: unknown gates {unknown}; known: {GATE_NAMES}.")

    # ------------------------------------------------------------------------------------------------ JSON
    @classmethod
    def from_dict(cls, vae: Mapping[str, Any]) -> DiffusionDecoderConfig:
        """Read a file's ``config["vae"]`` section (nested ``decoder``; a flat section is read as the decoder's
        own). Missing keys take ltx-core 1.2.0's defaults (module docstring).

        Mirrors ``ltx_core.model.video_vae.model_configurator._build_diffusion_video_decoder``.

        Raises:
            ConfigError: a value of the wrong type, or a config :meth:`validate` rejects.
        """
        dec = vae.get("decoder", vae)
        if not isinstance(dec, Mapping):
            raise ConfigError(f"vae.decoder must be a JSON object, got {type(dec).__name__}.")
        try:
            channels = tuple(int(c) for c in dec.get("stage_channels", (1024, 512, 256, 256, 128)))
            kernels = tuple(_triple(k) for k in dec.get("stage_kernels", ((3, 7, 7), (3, 7, 7), (3, 5, 5),
                                                                          (3, 5, 5), (3, 3, 3))))
            upsamples = dec.get("upsamples", (((1, 2, 2), 2), ((2, 1, 1), 2), ((2, 2, 2), 1), ((2, 2, 2), 2)))
            strides = tuple(_triple(stride) for stride, _ in upsamples)
            reductions = tuple(int(reduction) for _, reduction in upsamples)
            return cls(
                latent_channels=int(dec.get("in_channels", vae.get("latent_channels", 128))),
                out_channels=int(dec.get("out_channels", 3)),
                patch_size=int(dec.get("patch_size", 4)),
                head_dim=int(dec.get("head_dim", dec.get("na_head_dim", 64))),
                stage_channels=channels,
                stage_depths=tuple(int(d) for d in dec.get("stage_depths", (4, 6, 4, 2, 8))),
                stage_kernels=kernels[: len(channels) - 1],  # a fifth entry is stage 5's; stage5_kernel rules
                upsample_strides=strides, upsample_reductions=reductions,
                stage5_kernel=_triple(dec.get("stage5_kernel", (3, 7, 7))),
                stage5_channels=int(dec.get("stage5_channels", channels[-1] if channels else 0)),
                t_emb_dim=int(dec.get("t_emb_dim", 384)),
                timestep_scale_multiplier=float(dec.get("timestep_scale_multiplier", 1.0)),
                model_output_type=str(vae.get("model_output_type", "v")),
                num_inference_steps=int(dec.get("default_num_inference_steps", 2)),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"vae.decoder: {exc}. Expected lists of integers for stage_channels / stage_depths, "
                              "[T, H, W] kernels and [[T, H, W], reduction] upsamples.") from exc

    def to_dict(self) -> dict[str, Any]:
        """The ``config["vae"]`` section as the released file writes it (``_class_name`` ``CausalDiffusionVAE``, the
        decoder nested, ``model_output_type`` at the top); :meth:`from_dict` reads it back. ``gates`` is not part
        of it (it comes from the tensors)."""
        decoder = {
            "_class_name": DECODER_CLASS, "in_channels": self.latent_channels, "out_channels": self.out_channels,
            "patch_size": self.patch_size, "head_dim": self.head_dim, "stage_channels": list(self.stage_channels),
            "stage_depths": list(self.stage_depths),
            "stage_kernels": [list(k) for k in (*self.stage_kernels, self.stage5_kernel)],
            "upsamples": [[list(s), r] for s, r in zip(self.upsample_strides, self.upsample_reductions, strict=True)],
            "spatial_padding_mode": "zeros", "resampler_kind": "linear", "stage5_kernel": list(self.stage5_kernel),
            "stage5_channels": self.stage5_channels, "t_emb_dim": self.t_emb_dim,
            "timestep_scale_multiplier": self.timestep_scale_multiplier,
            "default_num_inference_steps": self.num_inference_steps,
        }
        return {"_class_name": DIFFUSION_VAE_CLASS, "latent_channels": self.latent_channels, "decoder": decoder,
                "model_output_type": self.model_output_type}

    def with_gates(self, gates: tuple[str, ...]) -> DiffusionDecoderConfig:
        """This config with ``gates`` (what the file's tensors carry)."""
        return replace(self, gates=tuple(g for g in GATE_NAMES if g in gates))


def _triple(value: Any) -> Triple:
    items = tuple(int(v) for v in value)
    if len(items) != 3:
        raise ValueError(f"expected [T, H, W], got {list(items)}")
    return (items[0], items[1], items[2])


def encoder_vae_config(encoder: dict[str, Any]) -> VideoVAEConfig:
    """The conv :class:`VideoVAEConfig` (encoder half only) of a ``CausalDiffusionVAE``'s nested ``vae.encoder``
    section, as ltx-core 1.2.0's ``model_configurator._prepare_video_encoder_kwargs`` reads it.

    Raises:
        ConfigError: as :meth:`VideoVAEConfig.from_dict`.
    """
    flat = {"dims": encoder.get("dims", 3), "in_channels": encoder.get("in_channels", 3),
            "latent_channels": encoder.get("out_channels", 128), "patch_size": encoder.get("patch_size", 4),
            "norm_layer": encoder.get("norm_layer", "pixel_norm"),
            "latent_log_var": encoder.get("latent_log_var", "uniform"),
            "spatial_padding_mode": encoder.get("spatial_padding_mode", "zeros"),
            "encoder_blocks": encoder.get("blocks", encoder.get("encoder_blocks", [])), "decoder_blocks": [],
            "timestep_conditioning": False}
    return VideoVAEConfig.from_dict(flat)
