"""Typed config of the causal video VAE, read from a checkpoint's ``config["vae"]`` JSON.

The JSON lists blocks as ``[name, params]`` pairs (``params`` an int = ``num_layers`` or a dict), the decoder's in
*encoder order* (the decoder runs them reversed). Missing keys take ltx-core 1.0.0's defaults, including its one
quirk: a single ``spatial_padding_mode`` key drives both halves, and when it is absent the encoder pads with zeros and
the decoder with ``reflect``.

Block kinds (table-driven in :mod:`.blocks`):

==========================  =============================================================================
encoder                     ``res_x``, ``res_x_y``, ``compress_{time,space,all}`` (strided conv),
                            ``compress_all_x_y``, ``compress_{time,space,all}_res`` (space-to-depth)
decoder                     ``res_x``, ``res_x_y``, ``compress_{time,space,all}`` (depth-to-space)
==========================  =============================================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

ENCODER_BLOCKS = ("res_x", "res_x_y", "compress_time", "compress_space", "compress_all", "compress_all_x_y",
                  "compress_time_res", "compress_space_res", "compress_all_res")
DECODER_BLOCKS = ("res_x", "res_x_y", "compress_time", "compress_space", "compress_all")

# (time, height/width) stride of every compressing block kind.
STRIDES: dict[str, tuple[int, int]] = {
    "compress_time": (2, 1), "compress_space": (1, 2), "compress_all": (2, 2), "compress_all_x_y": (2, 2),
    "compress_time_res": (2, 1), "compress_space_res": (1, 2), "compress_all_res": (2, 2),
}


class PaddingMode(str, enum.Enum):
    """Spatial padding of every conv (time is always padded by repeating the edge frame).

    Mirrors ``ltx_core.model.video_vae.enums.PaddingModeType``.
    """

    ZEROS = "zeros"
    REFLECT = "reflect"
    REPLICATE = "replicate"
    CIRCULAR = "circular"


class NormLayer(str, enum.Enum):
    """Norm of every block: pixel norm (released models) or 32-group GroupNorm.

    Mirrors ``ltx_core.model.video_vae.enums.NormLayerType``.
    """

    PIXEL_NORM = "pixel_norm"
    GROUP_NORM = "group_norm"


class LogVariance(str, enum.Enum):
    """What the encoder's ``conv_out`` emits besides the means: N (per_channel), 1 (uniform/constant) channels.

    Mirrors ``ltx_core.model.video_vae.enums.LogVarianceType`` (its ``none`` is not in any released config).
    """

    PER_CHANNEL = "per_channel"
    UNIFORM = "uniform"
    CONSTANT = "constant"


@dataclass(frozen=True)
class BlockSpec:
    """One encoder/decoder block: ``name`` and its options (``num_layers``, ``multiplier``, ``residual``,
    ``inject_noise``)."""

    name: str
    num_layers: int = 1
    multiplier: int | None = None  # None: the kind's default (encoder 2; decoder upsamplers 1, res_x_y 2)
    residual: bool = False
    inject_noise: bool = False

    @classmethod
    def parse(cls, item: Any, allowed: tuple[str, ...], where: str) -> BlockSpec:
        """One ``[name, params]`` JSON entry of ``vae.<where>``; ``allowed`` lists the block kinds of that half.

        Raises:
            ConfigError: not a ``[name, params]`` pair, an unsupported kind, or params that are not an int / dict.
        """
        try:
            name, params = item
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"vae.{where}: each block must be [name, params], got {item!r}.") from exc
        if name not in allowed:
            raise ConfigError(f"vae.{where}: unsupported block {name!r}; RS-LTXV supports {', '.join(allowed)}.")
        if isinstance(params, int):
            return cls(name, num_layers=params)
        if not isinstance(params, dict):
            raise ConfigError(f"vae.{where}: block {name!r} params must be an int or a dict, got {params!r}.")
        if name in ("res_x",) and "num_layers" not in params:
            raise ConfigError(f"vae.{where}: block {name!r} needs 'num_layers'.")
        return cls(name, num_layers=int(params.get("num_layers", 1)), multiplier=params.get("multiplier"),
                   residual=bool(params.get("residual", False)), inject_noise=bool(params.get("inject_noise", False)))

    def to_json(self) -> list[Any]:
        """The ``[name, params]`` JSON entry :meth:`parse` reads back."""
        params: dict[str, Any] = {}
        if self.name in ("res_x",):
            params["num_layers"] = self.num_layers
        if self.multiplier is not None:
            params["multiplier"] = self.multiplier
        if self.residual:
            params["residual"] = True
        if self.inject_noise:
            params["inject_noise"] = True
        return [self.name, params]


@dataclass(frozen=True)
class VideoVAEConfig:
    """The video VAE. Latents are ``(B, latent_channels, 1 + (F-1)/8, H/32, W/32)`` for the released layouts.

    Mirrors what ``ltx_core.model.video_vae.model_configurator.VideoEncoderConfigurator`` /
    ``VideoDecoderConfigurator`` read from ``config["vae"]``.
    """

    encoder_blocks: tuple[BlockSpec, ...] = field(default_factory=tuple)
    decoder_blocks: tuple[BlockSpec, ...] = field(default_factory=tuple)  # encoder order, as in the JSON
    in_channels: int = 3
    out_channels: int = 3
    latent_channels: int = 128
    patch_size: int = 4
    norm_layer: NormLayer = NormLayer.PIXEL_NORM
    latent_log_var: LogVariance = LogVariance.UNIFORM
    causal_decoder: bool = False
    timestep_conditioning: bool = False
    decoder_base_channels: int = 128
    encoder_padding: PaddingMode = PaddingMode.ZEROS
    decoder_padding: PaddingMode = PaddingMode.REFLECT

    @property
    def temporal_compression(self) -> int:
        """Pixel frames per latent frame of the encoder (8 for the released models)."""
        return _product(STRIDES[b.name][0] for b in self.encoder_blocks if b.name in STRIDES)

    @property
    def spatial_compression(self) -> int:
        """Pixels per latent cell of the encoder, patch size included (32 for the released models)."""
        return self.patch_size * _product(STRIDES[b.name][1] for b in self.encoder_blocks if b.name in STRIDES)

    @property
    def decoder_temporal_upsampling(self) -> int:
        """Pixel frames per latent frame of the decoder (8 for the released models)."""
        return _product(STRIDES[b.name][0] for b in self.decoder_blocks if b.name in STRIDES)

    @property
    def decoder_spatial_upsampling(self) -> int:
        """Pixels per latent cell of the decoder, patch size included (32 for the released models)."""
        return self.patch_size * _product(STRIDES[b.name][1] for b in self.decoder_blocks if b.name in STRIDES)

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> VideoVAEConfig:
        """Build from the checkpoint's ``config["vae"]`` dict (ltx-core 1.0.0 semantics and defaults).

        Raises:
            ConfigError: ``dims`` other than 3, an unsupported block, norm, log-variance or padding mode.
        """
        if cfg.get("dims", 3) != 3:
            raise ConfigError(f"vae.dims={cfg['dims']!r}: only 3-D (video) VAEs are supported.")
        enc = tuple(BlockSpec.parse(b, ENCODER_BLOCKS, "encoder_blocks") for b in cfg.get("encoder_blocks", []))
        dec = tuple(BlockSpec.parse(b, DECODER_BLOCKS, "decoder_blocks") for b in cfg.get("decoder_blocks", []))
        try:
            pad = cfg.get("spatial_padding_mode")
            config = cls(
                encoder_blocks=enc, decoder_blocks=dec,
                in_channels=int(cfg.get("in_channels", 3)), out_channels=int(cfg.get("out_channels", 3)),
                latent_channels=int(cfg.get("latent_channels", 128)), patch_size=int(cfg.get("patch_size", 4)),
                norm_layer=NormLayer(cfg.get("norm_layer", "pixel_norm")),
                latent_log_var=LogVariance(cfg.get("latent_log_var", "uniform")),
                causal_decoder=bool(cfg.get("causal_decoder", False)),
                # ltx-core's configurator defaults a missing key to True; every released config says False.
                timestep_conditioning=bool(cfg.get("timestep_conditioning", True)),
                decoder_base_channels=int(cfg.get("decoder_base_channels", 128)),
                encoder_padding=PaddingMode(pad or "zeros"), decoder_padding=PaddingMode(pad or "reflect"),
            )
        except ValueError as exc:
            raise ConfigError(f"vae config: {exc}. Supported: norm_layer pixel_norm/group_norm, latent_log_var "
                              "per_channel/uniform/constant, spatial_padding_mode zeros/reflect/replicate/"
                              "circular.") from exc
        return config

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint-style JSON dict (what :meth:`from_dict` reads back, padding modes permitting).

        Raises:
            ConfigError: the two halves pad differently in a way the single ``spatial_padding_mode`` key cannot say.
        """
        out: dict[str, Any] = {
            "dims": 3, "in_channels": self.in_channels, "out_channels": self.out_channels,
            "latent_channels": self.latent_channels, "patch_size": self.patch_size, "norm_layer": self.norm_layer.value,
            "latent_log_var": self.latent_log_var.value, "causal_decoder": self.causal_decoder,
            "timestep_conditioning": self.timestep_conditioning, "decoder_base_channels": self.decoder_base_channels,
            "encoder_blocks": [b.to_json() for b in self.encoder_blocks],
            "decoder_blocks": [b.to_json() for b in self.decoder_blocks],
        }
        if self.encoder_padding is self.decoder_padding:
            out["spatial_padding_mode"] = self.encoder_padding.value
        elif (self.encoder_padding, self.decoder_padding) != (PaddingMode.ZEROS, PaddingMode.REFLECT):
            raise ConfigError("The checkpoint config format has one spatial_padding_mode for both halves; "
                              f"encoder {self.encoder_padding.value} / decoder {self.decoder_padding.value} "
                              "cannot be written.")
        return out


def _product(values: Any) -> int:
    out = 1
    for v in values:
        out *= v
    return out
