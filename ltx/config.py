"""Typed configs of the LTX-2 transformer and the text connectors, read from a checkpoint's ``config`` JSON.

The JSON is the ``transformer`` section of ``__metadata__["config"]`` in the official single-file checkpoints.
Missing keys take the values of the released LTX-2 / LTX-2.3 models (not the older ltx-core defaults), so a
config inferred from tensor shapes describes the real models.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import ConfigError


class RopeLayout(str, enum.Enum):
    """How rotary frequencies are laid out over a head: ``split`` (LTX-2 and 2.3) or legacy ``interleaved``.

    Mirrors ``ltx_core.model.transformer.rope.LTXRopeType``.
    """

    SPLIT = "split"
    INTERLEAVED = "interleaved"


class Version(str, enum.Enum):
    """Transformer layout. LTX-2: 6-parameter AdaLN, caption projections inside the transformer.
    LTX-2.3: gated attention, 9-parameter AdaLN with prompt AdaLN, text projection before the connectors.
    LTX-2.5: the 2.3 layout with a bias-free video feed-forward and the keyframe absolute position embedding.

    No ltx-core counterpart: ltx-core reads each flag separately (``cross_attention_adaln``, ``apply_gated_attention``,
    ``caption_proj_before_connector``, ``ff_bias``, ``use_keyframes_abs_pos_embedding``).
    """

    LTX2 = "2.0"
    LTX23 = "2.3"
    LTX25 = "2.5"

    @property
    def display(self) -> str:
        """The model's name: "LTX-2", "LTX-2.3" or "LTX-2.5"."""
        return {"2.0": "LTX-2", "2.3": "LTX-2.3", "2.5": "LTX-2.5"}[self.value]


# Keys every released checkpoint carries with exactly these values; anything else is a model we do not implement.
FIXED_TRANSFORMER_KEYS: dict[str, Any] = {
    "dropout": 0.0,
    "attention_bias": True,
    "num_vector_embeds": None,
    "activation_fn": "gelu-approximate",
    "num_embeds_ada_norm": 1000,
    "use_linear_projection": False,
    "only_cross_attention": False,
    "cross_attention_norm": True,
    "double_self_attention": False,
    "upcast_attention": False,
    "standardization_norm": "rms_norm",
    "norm_elementwise_affine": False,
    "qk_norm": "rms_norm",
    "positional_embedding_type": "rope",
    "use_audio_video_cross_attention": True,
    "share_ff": False,
    "av_cross_ada_norm": True,
    "use_middle_indices_grid": True,
}

# Keys ltx-core 1.2.0 reads whose other values describe models RS-LTXV does not implement (checked when present, not
# written: the released checkpoints omit them).
SUPPORTED_ONLY_KEYS: dict[str, Any] = {
    "audio_ff_bias": True,  # LTX-2.5 drops the video feed-forward biases only
    "use_prompt_adaln_single": True,  # False: KV-cacheable checkpoints without the prompt AdaLN
}

# LTX-2.3 marks its text path with these four keys (projection before the connector, no extra linears).
V2_TEXT_KEYS: dict[str, Any] = {
    "caption_proj_before_connector": True,
    "caption_projection_first_linear": False,
    "caption_proj_input_norm": False,
    "caption_projection_second_linear": False,
}


@dataclass(frozen=True)
class ConnectorConfig:
    """One ``Embeddings1DConnector``: a small 1-D transformer over the text tokens. ``positional_embedding_max_pos``
    is in tokens.

    Mirrors what ``ltx_core.text_encoders.gemma.embeddings_connector.Embeddings1DConnectorConfigurator`` /
    ``AudioEmbeddings1DConnectorConfigurator`` read from ``config["transformer"]``.
    """

    num_attention_heads: int = 30
    attention_head_dim: int = 128
    num_layers: int = 2
    num_learnable_registers: int = 128
    positional_embedding_max_pos: tuple[int, ...] = (4096,)
    positional_embedding_theta: float = 10000.0
    apply_gated_attention: bool = False
    rope_layout: RopeLayout = RopeLayout.SPLIT
    double_precision_rope: bool = True

    @property
    def inner_dim(self) -> int:
        """Token width ``num_attention_heads × attention_head_dim``."""
        return self.num_attention_heads * self.attention_head_dim


@dataclass(frozen=True)
class TransformerConfig:
    """The audio-video transformer. Dimensions are per stream: video ``inner_dim``, audio ``audio_inner_dim``.
    ``positional_embedding_max_pos``: normalisers of the RoPE axes (seconds, pixels, pixels; audio: seconds).

    Mirrors what ``ltx_core.model.transformer.model_configurator.LTXModelConfigurator`` reads from
    ``config["transformer"]`` (defaults: the released models', see the module docstring).
    """

    num_layers: int = 48
    num_attention_heads: int = 32
    attention_head_dim: int = 128
    cross_attention_dim: int = 4096
    audio_num_attention_heads: int = 32
    audio_attention_head_dim: int = 64
    audio_cross_attention_dim: int = 2048
    in_channels: int = 128
    out_channels: int = 128
    audio_in_channels: int = 128
    audio_out_channels: int = 128
    caption_channels: int = 3840
    norm_eps: float = 1e-6
    positional_embedding_theta: float = 10000.0
    positional_embedding_max_pos: tuple[int, ...] = (20, 2048, 2048)
    audio_positional_embedding_max_pos: tuple[int, ...] = (20,)
    timestep_scale_multiplier: float = 1000.0
    av_ca_timestep_scale_multiplier: float = 1000.0
    rope_layout: RopeLayout = RopeLayout.SPLIT
    double_precision_rope: bool = True
    apply_gated_attention: bool = False
    cross_attention_adaln: bool = False
    caption_proj_before_connector: bool = False
    ff_bias: bool = True
    use_keyframes_abs_pos_embedding: bool = False
    video_connector: ConnectorConfig = field(default_factory=ConnectorConfig)
    audio_connector: ConnectorConfig = field(default_factory=ConnectorConfig)

    @property
    def inner_dim(self) -> int:
        """Video token width ``num_attention_heads × attention_head_dim`` (4096 for the released models)."""
        return self.num_attention_heads * self.attention_head_dim

    @property
    def audio_inner_dim(self) -> int:
        """Audio token width ``audio_num_attention_heads × audio_attention_head_dim`` (2048 released)."""
        return self.audio_num_attention_heads * self.audio_attention_head_dim

    @property
    def version(self) -> Version:
        """LTX-2.5 when the video feed-forward has no biases or the keyframe embedding is on, else LTX-2.3 when
        ``cross_attention_adaln``, else LTX-2."""
        if not self.ff_bias or self.use_keyframes_abs_pos_embedding:
            return Version.LTX25
        return Version.LTX23 if self.cross_attention_adaln else Version.LTX2

    @property
    def adaln_coefficient(self) -> int:
        """AdaLN rows per block: shift/scale/gate for self-attention and FF (6), + 3 for text cross-attention."""
        return 9 if self.cross_attention_adaln else 6

    def validate(self) -> None:
        """Check the dimensions the architecture needs.

        Raises:
            ConfigError: a cross-attention width that differs from its stream's width, or RoPE normalisers of the
                wrong length.
        """
        if self.cross_attention_dim != self.inner_dim:
            raise ConfigError(
                f"cross_attention_dim ({self.cross_attention_dim}) must equal the video width "
                f"num_attention_heads × attention_head_dim ({self.inner_dim})."
            )
        if self.audio_cross_attention_dim != self.audio_inner_dim:
            raise ConfigError(
                f"audio_cross_attention_dim ({self.audio_cross_attention_dim}) must equal the audio width "
                f"audio_num_attention_heads × audio_attention_head_dim ({self.audio_inner_dim})."
            )
        if len(self.positional_embedding_max_pos) != 3 or len(self.audio_positional_embedding_max_pos) != 1:
            raise ConfigError("positional_embedding_max_pos needs 3 entries (t, h, w) and the audio one 1 (t).")

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> TransformerConfig:
        """Build from the checkpoint's ``config["transformer"]`` dict, checking the keys with fixed values.

        Raises:
            ConfigError: a fixed key with another value, an unknown text-projection layout or ``rope_type``, or a
                config that fails :meth:`validate`.
        """
        for key, expected in FIXED_TRANSFORMER_KEYS.items():
            if key in cfg and cfg[key] != expected:
                raise ConfigError(
                    f"This checkpoint's transformer config has {key}={cfg[key]!r}; LTX-2/2.3 models have "
                    f"{expected!r}. It is not a model RS-LTXV implements."
                )
        for key, expected in SUPPORTED_ONLY_KEYS.items():
            if key in cfg and cfg[key] != expected:
                raise ConfigError(f"This checkpoint's transformer config has {key}={cfg[key]!r}; RS-LTXV implements "
                                  f"only {key}={expected!r} (LTX-2, 2.3 and 2.5 as released).")
        v2_present = cfg.keys() & V2_TEXT_KEYS.keys()
        if v2_present and (v2_present != V2_TEXT_KEYS.keys() or any(cfg[k] != V2_TEXT_KEYS[k] for k in v2_present)):
            found = {k: cfg.get(k, "<missing>") for k in V2_TEXT_KEYS}
            raise ConfigError(f"Unknown text-projection layout in the config: {found}. Expected {V2_TEXT_KEYS}.")
        base = cls()
        scalar = {f.name for f in fields(cls)} - {"rope_layout", "double_precision_rope", "video_connector",
                                                  "audio_connector", "positional_embedding_max_pos",
                                                  "audio_positional_embedding_max_pos"}
        kw: dict[str, Any] = {k: cfg[k] for k in scalar if k in cfg}
        for key in ("positional_embedding_max_pos", "audio_positional_embedding_max_pos"):
            if key in cfg:
                kw[key] = tuple(int(v) for v in cfg[key])
        # Released checkpoints always say rope_type "split"; ltx-core 1.0.0 defaults a missing key to "interleaved".
        try:
            kw["rope_layout"] = RopeLayout(cfg.get("rope_type", "interleaved"))
        except ValueError:
            raise ConfigError(f"This checkpoint's transformer config has rope_type={cfg['rope_type']!r}; RS-LTXV "
                              "knows 'split' and 'interleaved'.") from None
        kw["double_precision_rope"] = cfg.get("frequencies_precision", "float32") == "float64"
        kw["av_ca_timestep_scale_multiplier"] = float(cfg.get("av_ca_timestep_scale_multiplier", 1.0))
        kw["timestep_scale_multiplier"] = float(cfg.get("timestep_scale_multiplier", base.timestep_scale_multiplier))
        kw["video_connector"] = _connector_from_dict(cfg, audio=False, rope=kw["rope_layout"],
                                                     f64=kw["double_precision_rope"])
        kw["audio_connector"] = _connector_from_dict(cfg, audio=True, rope=kw["rope_layout"],
                                                     f64=kw["double_precision_rope"])
        config = cls(**kw)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint-style JSON dict (what ``from_dict`` reads back)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("video_connector", "audio_connector", "rope_layout", "double_precision_rope",
                          "caption_proj_before_connector"):
                continue
            if f.name in ("ff_bias", "use_keyframes_abs_pos_embedding") and value == getattr(TransformerConfig, f.name):
                continue  # written only when set (LTX-2.5), as the released 2.0 / 2.3 configs lack them
            out[f.name] = list(value) if isinstance(value, tuple) else value
        out["rope_type"] = self.rope_layout.value
        out["frequencies_precision"] = "float64" if self.double_precision_rope else "float32"
        out.update(FIXED_TRANSFORMER_KEYS)
        if self.caption_proj_before_connector:
            out.update(V2_TEXT_KEYS)
        for prefix, conn in (("connector_", self.video_connector), ("audio_connector_", self.audio_connector)):
            out[prefix + "num_attention_heads"] = conn.num_attention_heads
            out[prefix + "attention_head_dim"] = conn.attention_head_dim
            out[prefix + "num_layers"] = conn.num_layers
            out[prefix + "num_learnable_registers"] = conn.num_learnable_registers
        out["connector_positional_embedding_max_pos"] = list(self.video_connector.positional_embedding_max_pos)
        out["connector_apply_gated_attention"] = self.video_connector.apply_gated_attention
        return out

    def summary(self) -> dict[str, Any]:
        """A flat, printable view (used by ``python -m rs_ltxv info``)."""
        d = asdict(self)
        d["version"] = self.version.value
        d["rope_layout"] = self.rope_layout.value
        d["video_connector"]["rope_layout"] = self.video_connector.rope_layout.value
        d["audio_connector"]["rope_layout"] = self.audio_connector.rope_layout.value
        return d


def _connector_from_dict(cfg: dict[str, Any], *, audio: bool, rope: RopeLayout, f64: bool) -> ConnectorConfig:
    """Read the connector keys; the audio connector falls back to the video connector's values."""

    def get(name: str, default: Any) -> Any:
        video_value = cfg.get("connector_" + name, default)
        return cfg.get("audio_connector_" + name, video_value) if audio else video_value

    base = ConnectorConfig()
    return ConnectorConfig(
        num_attention_heads=int(get("num_attention_heads", base.num_attention_heads)),
        attention_head_dim=int(get("attention_head_dim", base.attention_head_dim)),
        num_layers=int(get("num_layers", base.num_layers)),
        num_learnable_registers=int(get("num_learnable_registers", base.num_learnable_registers)),
        positional_embedding_max_pos=tuple(cfg.get("connector_positional_embedding_max_pos",
                                                   base.positional_embedding_max_pos)),
        apply_gated_attention=bool(cfg.get("connector_apply_gated_attention", False)),
        rope_layout=rope,
        double_precision_rope=f64,
    )
