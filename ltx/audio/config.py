"""Typed configs of the audio VAE and the vocoders, read from a checkpoint's ``config`` JSON.

``AudioVAEConfig.from_dict`` takes the ``audio_vae`` section (``model.params.ddconfig`` + ``preprocessing.stft``);
``VocoderConfig.from_dict`` / ``BWEVocoderConfig.from_dict`` take the ``vocoder`` section: flat for LTX-2 (HiFi-GAN,
24 kHz) or nested ``{"vocoder": ..., "bwe": ...}`` for LTX-2.3 (BigVGAN-v2 at 16 kHz + bandwidth extension to 48 kHz).
Missing keys take the defaults ltx-core 1.0.0's configurators use, so the same dict builds the same model.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


class CausalityAxis(str, enum.Enum):
    """Axis of the ``(B, C, H, W)`` = ``(B, C, time, mel)`` maps along which convolutions only look back.
    The released models use ``height`` (= time). Mirrors ``ltx_core.model.audio_vae.causality_axis.CausalityAxis``.
    """

    NONE = "none"
    WIDTH = "width"
    HEIGHT = "height"
    WIDTH_COMPATIBILITY = "width-compatibility"


class NormType(str, enum.Enum):
    """Norm of the audio VAE blocks. Mirrors ``ltx_core.model.common.normalization.NormType``."""

    GROUP = "group"  # GroupNorm(32, eps 1e-6)
    PIXEL = "pixel"  # x / sqrt(mean_c(x²) + 1e-6)


def _enum(cls: type[enum.Enum], value: Any, key: str) -> Any:
    if value is None and cls is CausalityAxis:
        return CausalityAxis.NONE
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in cls)  # type: ignore[attr-defined]
        raise ConfigError(f"audio_vae config: {key}={value!r} is not supported (choose from {choices}).") from None


@dataclass(frozen=True)
class AudioVAEConfig:
    """The audio VAE (``audio_vae.model.params.ddconfig`` + STFT settings). Mel maps are
    ``(B, in_channels, T, mel_bins)`` at ``sample_rate / mel_hop_length`` frames per second;
    latents ``(B, z_channels, T', mel_bins / 2^(levels-1))``. ``sample_rate`` in Hz, ``mel_hop_length`` and
    ``n_fft`` in samples.

    Mirrors what ``ltx_core.model.audio_vae.model_configurator.AudioEncoderConfigurator`` /
    ``AudioDecoderConfigurator`` read from ``config["audio_vae"]``.
    """

    ch: int = 128
    out_ch: int = 2
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (8, 16, 32)
    resolution: int = 256
    z_channels: int = 8
    double_z: bool = True
    in_channels: int = 2
    mel_bins: int | None = None
    norm_type: NormType = NormType.PIXEL
    causality_axis: CausalityAxis = CausalityAxis.HEIGHT
    mid_block_add_attention: bool = True
    resamp_with_conv: bool = True
    sample_rate: int = 16000
    mel_hop_length: int = 160
    n_fft: int = 1024
    is_causal: bool = True

    @property
    def downsample_factor(self) -> int:
        """Time (and mel) compression of the encoder: 2 per level after the first (4 for the released models)."""
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def latent_frames_per_second(self) -> float:
        """Latent frames per second of audio: ``sample_rate / mel_hop_length / downsample_factor`` (25)."""
        return self.sample_rate / self.mel_hop_length / self.downsample_factor

    @classmethod
    def from_dict(cls, section: dict[str, Any]) -> AudioVAEConfig:
        """Build from the checkpoint's ``config["audio_vae"]`` section.

        Raises:
            ConfigError: not a JSON object, or an attention type, norm, causality axis or combination RS-LTXV does
                not implement.
        """
        if not isinstance(section, dict):
            raise ConfigError(f"audio_vae config must be a JSON object, got {type(section).__name__}.")
        params = section.get("model", {}).get("params", {})
        dd = params.get("ddconfig", {})
        stft = section.get("preprocessing", {}).get("stft", {})
        mel_cfg = section.get("preprocessing", {}).get("mel", {})
        if dd.get("attn_type", "vanilla") != "vanilla":
            raise ConfigError(f"audio_vae config: attn_type={dd['attn_type']!r} is not supported (only 'vanilla').")
        attn = dd.get("attn_resolutions", (8, 16, 32))
        cfg = cls(
            ch=int(dd.get("ch", 128)), out_ch=int(dd.get("out_ch", 2)), ch_mult=tuple(dd.get("ch_mult", (1, 2, 4))),
            num_res_blocks=int(dd.get("num_res_blocks", 2)), attn_resolutions=tuple(attn or ()),
            resolution=int(dd.get("resolution", 256)), z_channels=int(dd.get("z_channels", 8)),
            double_z=bool(dd.get("double_z", True)), in_channels=int(dd.get("in_channels", 2)),
            mel_bins=dd.get("mel_bins") or mel_cfg.get("n_mel_channels")
            or section.get("variables", {}).get("mel_bins"),
            norm_type=_enum(NormType, dd.get("norm_type", "pixel"), "norm_type"),
            causality_axis=_enum(CausalityAxis, dd.get("causality_axis", "height"), "causality_axis"),
            mid_block_add_attention=bool(dd.get("mid_block_add_attention", True)),
            resamp_with_conv=bool(dd.get("resamp_with_conv", True)),
            sample_rate=int(params.get("sampling_rate", 16000)), mel_hop_length=int(stft.get("hop_length", 160)),
            n_fft=int(stft.get("filter_length", 1024)), is_causal=bool(stft.get("causal", True)),
        )
        if cfg.causality_axis is not CausalityAxis.NONE and cfg.norm_type is NormType.GROUP:
            raise ConfigError("audio_vae config: causal convolutions with norm_type 'group' are not supported.")
        if not cfg.resamp_with_conv and cfg.causality_axis is not CausalityAxis.NONE:
            raise ConfigError("audio_vae config: causal downsampling needs resamp_with_conv=True.")
        return cfg


@dataclass(frozen=True)
class VocoderConfig:
    """One mel → waveform generator. Input ``(B, 2, T, 64)`` log-mel (stereo × 64 bins = 128 conv channels), output
    ``(B, 2, T · prod(upsample_rates))`` at ``output_sampling_rate``. ``resblock`` ``"1"`` = HiFi-GAN (leaky ReLU),
    ``"AMP1"`` = BigVGAN-v2 (anti-aliased SnakeBeta). ``output_sampling_rate`` in Hz.

    Mirrors the arguments of ``ltx_core.model.audio_vae.vocoder.Vocoder`` as
    ``ltx_core.model.audio_vae.model_configurator.VocoderConfigurator`` reads them.
    """

    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    upsample_rates: tuple[int, ...] = (6, 5, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 15, 8, 4, 4)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_initial_channel: int = 1024
    resblock: str = "1"
    output_sampling_rate: int = 24000
    activation: str = "snake"
    use_tanh_at_final: bool = True
    apply_final_activation: bool = True
    use_bias_at_final: bool = True

    @property
    def is_amp(self) -> bool:
        """Whether the residual blocks are BigVGAN-v2 ``AMP1`` blocks."""
        return self.resblock == "AMP1"

    @property
    def hop(self) -> int:
        """Output samples per input mel frame (``prod(upsample_rates)``)."""
        out = 1
        for r in self.upsample_rates:
            out *= r
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, apply_final_activation: bool = True,
                  output_sampling_rate: int | None = None) -> VocoderConfig:
        """Build from one flat generator section; ``output_sampling_rate`` (Hz) overrides the section's.

        Raises:
            ConfigError: a mono vocoder, an unknown resblock or activation, or lists of different lengths.
        """
        cfg = cls(
            resblock_kernel_sizes=tuple(d.get("resblock_kernel_sizes", (3, 7, 11))),
            upsample_rates=tuple(d.get("upsample_rates", (6, 5, 2, 2, 2))),
            upsample_kernel_sizes=tuple(d.get("upsample_kernel_sizes", (16, 15, 8, 4, 4))),
            resblock_dilation_sizes=tuple(tuple(x) for x in d.get("resblock_dilation_sizes", ((1, 3, 5),) * 3)),
            upsample_initial_channel=int(d.get("upsample_initial_channel", 1024)),
            resblock=str(d.get("resblock", "1")),
            output_sampling_rate=int(output_sampling_rate or d.get("output_sampling_rate", 24000)),
            activation=str(d.get("activation", "snake")),
            use_tanh_at_final=bool(d.get("use_tanh_at_final", True)),
            apply_final_activation=apply_final_activation,
            use_bias_at_final=bool(d.get("use_bias_at_final", True)),
        )
        if not d.get("stereo", True):
            raise ConfigError("vocoder config: only stereo vocoders (stereo=true) exist in LTX-2 checkpoints.")
        if cfg.resblock not in ("1", "AMP1"):
            raise ConfigError(f"vocoder config: resblock={cfg.resblock!r} is not supported ('1' or 'AMP1').")
        if cfg.is_amp and cfg.activation != "snakebeta":
            raise ConfigError(f"vocoder config: AMP1 blocks with activation={cfg.activation!r} are not supported "
                              "(LTX-2.3 uses 'snakebeta').")
        if len(cfg.upsample_rates) != len(cfg.upsample_kernel_sizes) or \
                len(cfg.resblock_kernel_sizes) != len(cfg.resblock_dilation_sizes):
            raise ConfigError("vocoder config: upsample_rates/upsample_kernel_sizes or resblock_kernel_sizes/"
                              "resblock_dilation_sizes have different lengths.")
        return cfg


@dataclass(frozen=True)
class BWEVocoderConfig:
    """LTX-2.3: ``vocoder`` (mel → ``input_sampling_rate`` waveform) + bandwidth extension ``bwe`` (causal STFT of
    that waveform → ``num_mels`` log-mel → residual generator, added to a 3× sinc-resampled skip →
    ``output_sampling_rate``). Rates in Hz, ``hop_length`` / ``n_fft`` in samples.

    Mirrors the arguments of ``ltx_core.model.audio_vae.vocoder.VocoderWithBWE``.
    """

    vocoder: VocoderConfig
    bwe: VocoderConfig
    input_sampling_rate: int = 16000
    output_sampling_rate: int = 48000
    hop_length: int = 80
    n_fft: int = 512
    num_mels: int = 64

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BWEVocoderConfig:
        """Build from the nested LTX-2.3 ``vocoder`` section (``{"vocoder": …, "bwe": …}``).

        Raises:
            ConfigError: no ``bwe`` object or a missing BWE key, generators that are not AMP1 / snakebeta, an output
                rate that is not a multiple of the input rate, or as :meth:`VocoderConfig.from_dict`.
        """
        bwe = d.get("bwe")
        if not isinstance(bwe, dict):
            raise ConfigError(f"vocoder config: 'bwe' must be a JSON object, got {type(bwe).__name__}.")
        try:
            rates = {k: int(bwe[k]) for k in ("input_sampling_rate", "output_sampling_rate", "hop_length", "n_fft",
                                               "num_mels")}
        except KeyError as exc:
            raise ConfigError(f"vocoder.bwe config has no {exc.args[0]!r}.") from None
        for name, sub in (("vocoder", d.get("vocoder", {})), ("bwe", bwe)):
            if sub.get("resblock", "1") != "AMP1" or sub.get("activation", "snake") != "snakebeta":
                raise ConfigError(f"vocoder.{name} config: the bandwidth-extension vocoder needs resblock 'AMP1' and "
                                  "activation 'snakebeta'.")
        if rates["output_sampling_rate"] % rates["input_sampling_rate"]:
            raise ConfigError("vocoder.bwe config: output_sampling_rate must be a multiple of input_sampling_rate.")
        return cls(
            vocoder=VocoderConfig.from_dict(d.get("vocoder", {}), output_sampling_rate=rates["input_sampling_rate"]),
            bwe=VocoderConfig.from_dict(bwe, apply_final_activation=False,
                                        output_sampling_rate=rates["output_sampling_rate"]),
            **rates,
        )


def vocoder_config_from_dict(section: dict[str, Any]) -> VocoderConfig | BWEVocoderConfig:
    """The ``vocoder`` section: nested with ``bwe`` → :class:`BWEVocoderConfig` (LTX-2.3), flat →
    :class:`VocoderConfig` (LTX-2). Mirrors ``ltx_core.model.audio_vae.model_configurator.VocoderConfigurator``.

    Raises:
        ConfigError: not a JSON object, a flat section whose resblock is not '1', or as the ``from_dict`` it calls.
    """
    if not isinstance(section, dict):
        raise ConfigError(f"vocoder config must be a JSON object, got {type(section).__name__}.")
    if "bwe" in section:
        return BWEVocoderConfig.from_dict(section)
    if section.get("resblock", "1") != "1":
        raise ConfigError("vocoder config: a flat (LTX-2) vocoder config must use resblock '1'.")
    return VocoderConfig.from_dict(section)
