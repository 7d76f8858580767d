"""Typed config of a Gemma-3 text model, read from a Hugging Face ``config.json`` (old or new RoPE format).

Serves the Gemma-3-12B that LTX-2 / LTX-2.3 use (:data:`GEMMA3_12B`) and every smaller Gemma-3 (270M, 1B, 4B …).
Missing keys take the defaults of Hugging Face's ``Gemma3TextConfig`` (the released ``config.json`` files leave many
keys out and rely on them). A multimodal ``Gemma3Config`` is read through its ``text_config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

SLIDING = "sliding_attention"
FULL = "full_attention"
_ACTIVATIONS = ("gelu_pytorch_tanh", "gelu_tanh", "gelu_approximate")


@dataclass(frozen=True)
class RopeSpec:
    """Rotary embedding of one kind of layer: ``theta`` base, linear position scaling ``factor`` (1 = none).

    Hugging Face keeps it as one ``rope_parameters`` entry per layer type (``rope_type`` "default" / "linear").
    """

    theta: float
    factor: float = 1.0


@dataclass(frozen=True)
class GemmaConfig:
    """Gemma-3 text decoder. ``layer_types[i]`` is ``"sliding_attention"`` (window ``sliding_window`` tokens, local
    RoPE) or ``"full_attention"`` (global RoPE); by default every ``sliding_window_pattern``-th layer is global.

    Mirrors ``transformers.models.gemma3.configuration_gemma3.Gemma3TextConfig`` (ltx-core's copy:
    ``ltx_core.text_encoders.gemma.config.Gemma3TextConfig``). Units: ``sliding_window`` in tokens.
    """

    vocab_size: int = 262_208
    hidden_size: int = 2304
    intermediate_size: int = 9216
    num_hidden_layers: int = 26
    num_attention_heads: int = 8
    num_key_value_heads: int = 4
    head_dim: int = 256
    query_pre_attn_scalar: float = 256
    rms_norm_eps: float = 1e-6
    sliding_window: int = 4096
    layer_types: tuple[str, ...] = ()
    rope_local: RopeSpec = field(default_factory=lambda: RopeSpec(10_000.0))
    rope_global: RopeSpec = field(default_factory=lambda: RopeSpec(1_000_000.0))
    max_position_embeddings: int = 131_072
    pad_token_id: int = 0
    bos_token_id: int = 2
    eos_token_id: int = 1

    def __post_init__(self) -> None:
        if not self.layer_types:
            object.__setattr__(self, "layer_types", default_layer_types(self.num_hidden_layers, 6))

    @property
    def num_hidden_states(self) -> int:
        """Hidden states the model returns: the scaled embeddings plus one per layer (49 for the 12B)."""
        return self.num_hidden_layers + 1

    def rope(self, layer_type: str) -> RopeSpec:
        """The RoPE of ``layer_type``: global for ``"full_attention"``, local otherwise."""
        return self.rope_global if layer_type == FULL else self.rope_local

    def validate(self) -> None:
        """Check what the architecture needs.

        Raises:
            ConfigError: heads not a multiple of the key/value heads, ``layer_types`` of the wrong length or with
                unknown kinds, or an odd ``head_dim``.
        """
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(f"Gemma config: num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                              f"num_key_value_heads ({self.num_key_value_heads}).")
        if len(self.layer_types) != self.num_hidden_layers or set(self.layer_types) - {SLIDING, FULL}:
            raise ConfigError(f"Gemma config: layer_types must list {self.num_hidden_layers} entries, each "
                              f"'{SLIDING}' or '{FULL}'; got {list(self.layer_types)}.")
        if self.head_dim % 2:
            raise ConfigError(f"Gemma config: head_dim ({self.head_dim}) must be even for rotary embeddings.")

    @classmethod
    def from_hf_dict(cls, cfg: dict[str, Any]) -> GemmaConfig:
        """Read a Hugging Face ``config.json`` dict (``Gemma3Config`` with ``text_config``, or ``Gemma3TextConfig``).

        Raises:
            ConfigError: not a Gemma-3 text model, an activation / RoPE type / option RS-LTXV does not implement,
                or values that fail :meth:`validate`.
        """
        if "text_config" in cfg:
            cfg = cfg["text_config"] or {}
        model_type = cfg.get("model_type", "gemma3_text")
        if model_type not in ("gemma3_text", "gemma3"):
            raise ConfigError(f"This config is for model_type {model_type!r}, not a Gemma-3 text model "
                              "('gemma3_text'). Point RS-LTXV at a Gemma-3 checkpoint.")
        activation = cfg.get("hidden_activation", cfg.get("hidden_act", "gelu_pytorch_tanh"))
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"Gemma config: hidden_activation {activation!r} is not supported (Gemma-3 uses "
                              "gelu_pytorch_tanh).")
        for key in ("attn_logit_softcapping", "use_bidirectional_attention", "attention_bias"):
            if cfg.get(key):
                raise ConfigError(f"Gemma config sets {key}={cfg[key]!r}; Gemma-3 text models do not, and RS-LTXV "
                                  "does not implement it.")
        base = cls(layer_types=(FULL,))
        kw: dict[str, Any] = {}
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "head_dim", "sliding_window", "max_position_embeddings",
                     "pad_token_id", "bos_token_id"):
            if cfg.get(name) is not None:
                kw[name] = int(cfg[name])
        if isinstance(cfg.get("eos_token_id"), int):
            kw["eos_token_id"] = cfg["eos_token_id"]
        for name in ("query_pre_attn_scalar", "rms_norm_eps"):
            if cfg.get(name) is not None:
                kw[name] = float(cfg[name])
        layers = kw.get("num_hidden_layers", base.num_hidden_layers)
        if cfg.get("layer_types"):
            kw["layer_types"] = tuple(cfg["layer_types"])
        else:
            kw["layer_types"] = default_layer_types(layers, int(cfg.get("sliding_window_pattern", 6)))
        kw["rope_local"], kw["rope_global"] = _read_rope(cfg)
        config = cls(**kw)
        config.validate()
        return config

    def to_hf_dict(self) -> dict[str, Any]:
        """A ``Gemma3TextConfig``-style dict (new ``rope_parameters`` format) that :meth:`from_hf_dict` reads back."""
        out: dict[str, Any] = {"model_type": "gemma3_text", "hidden_activation": "gelu_pytorch_tanh"}
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "head_dim", "query_pre_attn_scalar", "rms_norm_eps", "sliding_window",
                     "max_position_embeddings", "pad_token_id", "bos_token_id", "eos_token_id"):
            out[name] = getattr(self, name)
        scalar = self.query_pre_attn_scalar
        out["query_pre_attn_scalar"] = int(scalar) if float(scalar).is_integer() else scalar
        out["layer_types"] = list(self.layer_types)
        out["rope_parameters"] = {
            SLIDING: _rope_dict(self.rope_local),
            FULL: _rope_dict(self.rope_global),
        }
        return out


def default_layer_types(num_layers: int, pattern: int) -> tuple[str, ...]:
    """Every ``pattern``-th layer (``(i + 1) % pattern == 0``) is global, the rest sliding-window: the
    ``layer_types`` that ``transformers.models.gemma3.configuration_gemma3.Gemma3TextConfig`` derives from
    ``sliding_window_pattern``."""
    return tuple(SLIDING if (i + 1) % pattern else FULL for i in range(num_layers))


def _rope_dict(spec: RopeSpec) -> dict[str, Any]:
    if spec.factor == 1.0:
        return {"rope_type": "default", "rope_theta": spec.theta}
    return {"rope_type": "linear", "factor": spec.factor, "rope_theta": spec.theta}


def _rope_spec(params: dict[str, Any] | None, theta: float, where: str) -> RopeSpec:
    params = params or {}
    kind = params.get("rope_type", params.get("type", "default"))
    if kind not in ("default", "linear"):
        raise ConfigError(f"Gemma config: {where} RoPE type {kind!r} is not supported (Gemma-3 uses 'default' "
                          "and 'linear').")
    factor = float(params.get("factor", 1.0)) if kind == "linear" else 1.0
    return RopeSpec(float(params.get("rope_theta", theta)), factor)


def _read_rope(cfg: dict[str, Any]) -> tuple[RopeSpec, RopeSpec]:
    """(local, global) from the new ``rope_parameters`` per layer type or the old ``rope_theta`` /
    ``rope_local_base_freq`` / ``rope_scaling`` keys."""
    params = cfg.get("rope_parameters")
    if isinstance(params, dict) and (SLIDING in params or FULL in params):
        return (_rope_spec(params.get(SLIDING), 10_000.0, "local"),
                _rope_spec(params.get(FULL), 1_000_000.0, "global"))
    local = RopeSpec(float(cfg.get("rope_local_base_freq", 10_000.0)))
    global_theta = float(cfg.get("rope_theta", 1_000_000.0))
    return local, _rope_spec(cfg.get("rope_scaling"), global_theta, "global")


#: Gemma-3 sizes by hidden width → (sliding_window, global linear RoPE factor, query_pre_attn_scalar): the values a
#: config inferred from tensor shapes, or read from GGUF metadata (which lacks some of them), cannot see.
KNOWN_SIZES: dict[int, tuple[int, float, float]] = {
    640: (512, 1.0, 256),     # 270M
    1152: (512, 1.0, 256),    # 1B
    2560: (1024, 8.0, 256),   # 4B
    3840: (1024, 8.0, 256),   # 12B (LTX-2 / LTX-2.3)
    5376: (1024, 8.0, 168),   # 27B
}

# google/gemma-3-12b-it, the text encoder of LTX-2 and LTX-2.3 (ltx-core 1.0.0 text_encoders/gemma/config.py).
GEMMA3_12B = GemmaConfig(
    vocab_size=262_208, hidden_size=3840, intermediate_size=15360, num_hidden_layers=48, num_attention_heads=16,
    num_key_value_heads=8, head_dim=256, query_pre_attn_scalar=256, sliding_window=1024,
    layer_types=default_layer_types(48, 6), rope_local=RopeSpec(10_000.0), rope_global=RopeSpec(1_000_000.0, 8.0),
)

