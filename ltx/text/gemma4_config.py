"""Typed config of the Gemma-4 text decoder LTX-2.5 encodes prompts with (``gemma4_unified``, 12B), read from the
Hugging Face config dict that the bundled text-encoder file stores as ``__metadata__["gemma_config"]`` (or a
``config.json``).

What differs from Gemma-3 (:mod:`.gemma_config`), all read from the config:

* global (``"full_attention"``) layers use ``global_head_dim``-wide heads (512 for the 12B), and with
  ``attention_k_eq_v`` have ``num_global_key_value_heads`` key/value heads (1) and no ``v_proj``: the values are the
  key projection's output (before ``k_norm``);
* RoPE per layer type, ``"proportional"`` for the global layers: only the first ``partial_rotary_factor`` of the
  angle pairs rotate (frequencies over the full head width), the rest stay unrotated;
* attention is unscaled (scale 1), values get a weightless RMSNorm, and each layer's output is multiplied by its
  stored ``layer_scalar``;
* the top-level ``gemma_version`` names the LTX fine-tune ("gemma4-12b-ltx-v1"); an LTX-2.5 checkpoint names the
  version it needs in its ``gemma_source_checkpoint`` metadata.

Missing keys take the defaults of ``transformers.models.gemma4_unified.configuration_gemma4_unified.
Gemma4UnifiedTextConfig`` / ``Gemma4UnifiedConfig`` (transformers 5.14).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ConfigError
from .gemma_config import FULL, SLIDING

#: ``gemma_version`` of the LTX fine-tune of Gemma-4 12B that LTX-2.5 ships (``gemma_source_checkpoint`` metadata)
GEMMA4_LTX_VERSION = "gemma4-12b-ltx-v1"
#: ``model_type`` values of the Gemma-4 text encoder that LTX-2.5 encodes with (whole model / its text config)
MODEL_TYPES = ("gemma4_unified", "gemma4_unified_text")
_ROPE_KINDS = ("default", "linear", "proportional")
_ACTIVATIONS = ("gelu_pytorch_tanh", "gelu_tanh", "gelu_approximate")


@dataclass(frozen=True)
class Gemma4Rope:
    """Rotary embedding of one layer type: ``kind`` ("default" / "linear" / "proportional"), ``theta`` base,
    ``factor`` (frequencies divided by it; "linear" / "proportional"), ``partial_rotary_factor`` (the share of angle
    pairs that rotate, "proportional" only).

    Mirrors one ``rope_parameters`` entry of ``Gemma4UnifiedTextConfig`` and
    ``transformers.modeling_rope_utils._compute_proportional_rope_parameters`` /
    ``Gemma4UnifiedTextRotaryEmbedding.compute_default_rope_parameters``.
    """

    kind: str = "default"
    theta: float = 10_000.0
    factor: float = 1.0
    partial_rotary_factor: float = 1.0

    def inv_freq(self, head_dim: int) -> torch.Tensor:
        """The ``head_dim / 2`` inverse frequencies (float32, radians per position); "proportional" leaves the last
        ``head_dim/2 − int(partial·head_dim // 2)`` at 0 (no rotation)."""
        if self.kind == "proportional":
            angles = int(self.partial_rotary_factor * head_dim // 2)
            rotated = 1.0 / (self.theta ** (torch.arange(0, 2 * angles, 2, dtype=torch.int64).float() / head_dim))
            inv = torch.cat((rotated, torch.zeros(head_dim // 2 - angles, dtype=torch.float32)))
            return inv / self.factor
        inv = 1.0 / (self.theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
        return inv / self.factor if self.kind == "linear" else inv

    def to_hf_dict(self) -> dict[str, Any]:
        """The ``rope_parameters`` entry that :meth:`Gemma4Config.from_hf_dict` reads back."""
        out: dict[str, Any] = {"rope_type": self.kind, "rope_theta": self.theta}
        if self.kind != "default":
            out["factor"] = self.factor
        if self.kind == "proportional":
            out["partial_rotary_factor"] = self.partial_rotary_factor
        return out


def default_layer_types(num_layers: int) -> tuple[str, ...]:
    """Every 6th layer global, the rest sliding, and the last layer always global: what
    ``Gemma4UnifiedTextConfig.__post_init__`` derives when ``layer_types`` is absent."""
    types = [SLIDING if (i + 1) % 6 else FULL for i in range(num_layers)]
    return (*types[:-1], FULL) if types else ()


@dataclass(frozen=True)
class Gemma4Config:
    """Gemma-4 (``gemma4_unified``) text decoder, the part LTX-2.5's prompt path runs.

    Mirrors ``transformers.models.gemma4_unified.configuration_gemma4_unified.Gemma4UnifiedTextConfig`` (plus
    ``gemma_version`` and the multimodal placeholder ids of ``Gemma4UnifiedConfig``, which the text path replaces
    by the pad id). Units: ``sliding_window`` in tokens; head widths in channels.
    """

    vocab_size: int = 262_144
    hidden_size: int = 2304
    intermediate_size: int = 9216
    num_hidden_layers: int = 30
    num_attention_heads: int = 8
    num_key_value_heads: int = 4
    head_dim: int = 256
    global_head_dim: int = 512
    num_global_key_value_heads: int | None = None
    attention_k_eq_v: bool = False
    rms_norm_eps: float = 1e-6
    sliding_window: int = 1024
    layer_types: tuple[str, ...] = ()
    rope_sliding: Gemma4Rope = field(default_factory=Gemma4Rope)
    rope_full: Gemma4Rope = field(default_factory=lambda: Gemma4Rope("proportional", 1_000_000.0, 1.0, 0.25))
    max_position_embeddings: int = 262_144
    pad_token_id: int = 0
    bos_token_id: int = 2
    eos_token_id: int = 1
    multimodal_token_ids: tuple[int, ...] = (258_880, 258_884, 258_881)
    gemma_version: str | None = None

    def __post_init__(self) -> None:
        if not self.layer_types:
            object.__setattr__(self, "layer_types", default_layer_types(self.num_hidden_layers))

    @property
    def num_hidden_states(self) -> int:
        """Hidden states the model returns: the scaled embeddings plus one per layer (49 for the 12B)."""
        return self.num_hidden_layers + 1

    def rope(self, layer_type: str) -> Gemma4Rope:
        """The RoPE of ``layer_type``."""
        return self.rope_full if layer_type == FULL else self.rope_sliding

    def attn_head_dim(self, layer_type: str) -> int:
        """Head width of a layer of ``layer_type``: ``global_head_dim`` for global layers (when set)."""
        return self.global_head_dim if layer_type == FULL and self.global_head_dim else self.head_dim

    def kv_heads(self, layer_type: str) -> int:
        """Key/value heads of a layer of ``layer_type`` (``num_global_key_value_heads`` for global layers that share
        K and V)."""
        if layer_type == FULL and self.attention_k_eq_v:
            return self.num_global_key_value_heads or self.num_key_value_heads
        return self.num_key_value_heads

    def shares_kv(self, layer_type: str) -> bool:
        """True when a layer of ``layer_type`` has no ``v_proj`` (values = keys before ``k_norm``)."""
        return self.attention_k_eq_v and layer_type == FULL

    def rope_dim(self, layer_type: str) -> int:
        """Width of the RoPE table of ``layer_type``: ``global_head_dim`` for a proportional global RoPE, else
        ``head_dim`` (as ``Gemma4UnifiedTextRotaryEmbedding`` picks it)."""
        spec = self.rope(layer_type)
        return self.global_head_dim if layer_type == FULL and spec.kind == "proportional" else self.head_dim

    def validate(self) -> None:
        """Check what the architecture needs.

        Raises:
            ConfigError: unknown layer kinds or a wrong count, heads not a multiple of the key/value heads, a RoPE
                table whose width is not the head width, or odd head widths.
        """
        if len(self.layer_types) != self.num_hidden_layers or set(self.layer_types) - {SLIDING, FULL}:
            raise ConfigError(f"Gemma-4 config: layer_types must list {self.num_hidden_layers} entries, each "
                              f"'{SLIDING}' or '{FULL}'; got {list(self.layer_types)}.")
        for kind in set(self.layer_types):
            heads, width = self.kv_heads(kind), self.attn_head_dim(kind)
            if heads <= 0 or self.num_attention_heads % heads:
                raise ConfigError(f"Gemma-4 config: num_attention_heads ({self.num_attention_heads}) must be a "
                                  f"multiple of the {kind} layers' key/value heads ({heads}).")
            if width % 2 or self.rope_dim(kind) != width:
                raise ConfigError(f"Gemma-4 config: the {kind} layers' RoPE ({self.rope(kind).kind}, width "
                                  f"{self.rope_dim(kind)}) does not fit their even head width {width}.")

    @classmethod
    def from_hf_dict(cls, cfg: dict[str, Any]) -> Gemma4Config:
        """Read a Hugging Face config dict: ``Gemma4UnifiedConfig`` (``text_config`` inside, ``gemma_version`` and
        the placeholder ids on top) or ``Gemma4UnifiedTextConfig``.

        Raises:
            ConfigError: not a ``gemma4_unified`` model (Gemma-3 and the dense Gemma-4 prompt enhancer are named),
                an option RS-LTXV does not implement (KV sharing, bidirectional attention, attention bias, another
                activation or RoPE type), or values that fail :meth:`validate`.
        """
        if not isinstance(cfg, dict):
            raise ConfigError("The Gemma-4 config must be a JSON object.")
        top = cfg
        model_type = cfg.get("model_type")
        if model_type not in MODEL_TYPES:
            hint = (" That is a Gemma-3 config: LTX-2 / LTX-2.3 use Gemma-3, LTX-2.5 the Gemma-4 file "
                    "gemma4-12b-with-proj-ltx-2.5-*.safetensors." if str(model_type).startswith("gemma3") else
                    " The dense Gemma-4 ('gemma4') is the prompt enhancer, not the LTX-2.5 text encoder."
                    if model_type == "gemma4" else "")
            raise ConfigError(f"This Gemma config has model_type {model_type!r}; the LTX-2.5 text encoder is "
                              f"{MODEL_TYPES[0]!r}.{hint}")
        text = (cfg.get("text_config") or {}) if model_type == MODEL_TYPES[0] else cfg
        if not isinstance(text, dict):
            raise ConfigError("Gemma-4 config: text_config must be a JSON object.")
        _check_supported(text)
        kw: dict[str, Any] = {}
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "head_dim", "global_head_dim", "num_global_key_value_heads",
                     "sliding_window", "max_position_embeddings", "pad_token_id", "bos_token_id"):
            if text.get(name) is not None:
                kw[name] = _int(text[name], name)
        if isinstance(text.get("eos_token_id"), int):
            kw["eos_token_id"] = text["eos_token_id"]
        if text.get("rms_norm_eps") is not None:
            kw["rms_norm_eps"] = float(text["rms_norm_eps"])
        kw["attention_k_eq_v"] = bool(text.get("attention_k_eq_v", False))
        layers = kw.get("num_hidden_layers", cls.num_hidden_layers)
        types = tuple(text["layer_types"]) if text.get("layer_types") else default_layer_types(layers)
        if types:
            types = (*types[:-1], FULL)  # Gemma4UnifiedTextConfig forces the last layer global
        kw["layer_types"] = types
        kw["rope_sliding"], kw["rope_full"] = _read_rope(text.get("rope_parameters"))
        if top is not text:
            ids = tuple(top.get(k, d) for k, d in (("image_token_id", 258_880), ("video_token_id", 258_884),
                                                    ("audio_token_id", 258_881)))
            kw["multimodal_token_ids"] = tuple(_int(i, "placeholder token id") for i in ids if i is not None)
        version = top.get("gemma_version")
        kw["gemma_version"] = str(version) if version is not None else None
        config = cls(**kw)
        config.validate()
        return config

    def to_hf_dict(self) -> dict[str, Any]:
        """A ``Gemma4UnifiedConfig`` dict (``text_config`` inside, no vision / audio configs) that
        :meth:`from_hf_dict` reads back and ``transformers`` builds."""
        text: dict[str, Any] = {"model_type": MODEL_TYPES[1], "hidden_activation": "gelu_pytorch_tanh",
                                "use_bidirectional_attention": "vision"}
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "head_dim", "global_head_dim", "num_global_key_value_heads",
                     "attention_k_eq_v", "rms_norm_eps", "sliding_window", "max_position_embeddings",
                     "pad_token_id", "bos_token_id", "eos_token_id"):
            text[name] = getattr(self, name)
        text["layer_types"] = list(self.layer_types)
        text["rope_parameters"] = {SLIDING: self.rope_sliding.to_hf_dict(), FULL: self.rope_full.to_hf_dict()}
        out: dict[str, Any] = {"model_type": MODEL_TYPES[0], "text_config": text, "vision_config": None,
                               "audio_config": None}
        for name, value in zip(("image_token_id", "video_token_id", "audio_token_id"), self.multimodal_token_ids,
                               strict=False):
            out[name] = value
        if self.gemma_version is not None:
            out["gemma_version"] = self.gemma_version
        return out


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ConfigError(f"Gemma-4 config: {name} must be an integer; got {value!r}.")
    return int(value)


def _check_supported(text: dict[str, Any]) -> None:
    activation = text.get("hidden_activation", text.get("hidden_act", "gelu_pytorch_tanh"))
    if activation not in _ACTIVATIONS:
        raise ConfigError(f"Gemma-4 config: hidden_activation {activation!r} is not supported (Gemma-4 uses "
                          "gelu_pytorch_tanh).")
    if text.get("use_bidirectional_attention", "vision") not in ("vision", None):
        raise ConfigError("Gemma-4 config sets use_bidirectional_attention="
                          f"{text['use_bidirectional_attention']!r}; RS-LTXV implements the causal text path only.")
    for key in ("num_kv_shared_layers", "attention_bias"):
        if text.get(key):
            raise ConfigError(f"Gemma-4 config sets {key}={text[key]!r}; the LTX-2.5 text encoder does not, and "
                              "RS-LTXV does not implement it.")


def _rope_spec(params: Any, default: Gemma4Rope, where: str) -> Gemma4Rope:
    if params is None:
        return default
    if not isinstance(params, dict):
        raise ConfigError(f"Gemma-4 config: rope_parameters[{where!r}] must be a JSON object.")
    kind = params.get("rope_type", "default")
    if kind not in _ROPE_KINDS:
        raise ConfigError(f"Gemma-4 config: {where} RoPE type {kind!r} is not supported ({', '.join(_ROPE_KINDS)}).")
    return Gemma4Rope(kind, float(params.get("rope_theta", default.theta)), float(params.get("factor", 1.0)),
                      float(params.get("partial_rotary_factor", 1.0)))


def _read_rope(params: Any) -> tuple[Gemma4Rope, Gemma4Rope]:
    """(sliding, full) from ``rope_parameters`` keyed by layer type; defaults as ``Gemma4UnifiedTextConfig``'s."""
    base = Gemma4Config()
    if params is None:
        return base.rope_sliding, base.rope_full
    if not isinstance(params, dict):
        raise ConfigError("Gemma-4 config: rope_parameters must be a JSON object keyed by layer type.")
    return (_rope_spec(params.get(SLIDING), Gemma4Rope(), SLIDING),
            _rope_spec(params.get(FULL), Gemma4Rope(theta=1_000_000.0), FULL))
