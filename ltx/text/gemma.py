"""Gemma-3 text decoder that returns every hidden state (the embeddings plus each layer), as LTX's text path needs.

Per layer: ``x + post_attn_norm(attn(input_norm(x)))``, then ``x + post_ff_norm(mlp(pre_ff_norm(x)))``. Attention is
grouped-query with RMSNorm on q and k over ``head_dim``, RoPE (local base for sliding-window layers, global base with
linear position scaling for full layers) and scale ``query_pre_attn_scalar^-½``; the MLP is
``down(gelu_tanh(gate(x)) · up(x))``. Every RMSNorm computes in float32 and multiplies by ``(1 + w)``. Embeddings
are multiplied by √hidden rounded to the model dtype (62.0 in bf16 for the 12B). No LM head, no vision tower.

Parameter names are Hugging Face's ``Gemma3TextModel`` names (``embed_tokens.weight``,
``layers.N.self_attn.{q,k,v,o}_proj.weight``, ``layers.N.self_attn.{q,k}_norm.weight``,
``layers.N.mlp.{gate,up,down}_proj.weight``, ``layers.N.{input,post_attention,pre_feedforward,post_feedforward}_
layernorm.weight``, ``norm.weight``). ltx-core runs the Hugging Face model itself
(``transformers.models.gemma3.modeling_gemma3``, through
``ltx_core.text_encoders.gemma.encoders.base_encoder.GemmaTextEncoder``); each class here names its counterpart.
"""

from __future__ import annotations

import torch
from torch import nn

from ...ops import attention, resolve_backend
from ..errors import InputError
from .gemma_config import FULL, SLIDING, GemmaConfig, RopeSpec


class GemmaRMSNorm(nn.Module):
    """``x / rms(x) · (1 + w)`` over the last dim, computed in float32 and cast back to the input dtype.

    Mirrors ``transformers.models.gemma3.modeling_gemma3.Gemma3RMSNorm``.
    """

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(…, dim)`` → ``(…, dim)``, same shape and dtype."""
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return (h * (1.0 + self.weight.float())).to(x.dtype)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, spec: RopeSpec,
                 dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``positions`` ``(B, T)`` token indices → cos, sin ``(B, 1, T, head_dim)`` in ``dtype`` (half-split layout).

    Frequencies ``1 / (θ^(2i/head_dim) · factor)`` and angles are float32, as Hugging Face computes them
    (``transformers.models.gemma3.modeling_gemma3.Gemma3RotaryEmbedding``)."""
    exponent = torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float() / head_dim
    inv_freq = 1.0 / (spec.theta ** exponent) / spec.factor
    angles = positions.float()[:, :, None] * inv_freq[None, None, :]
    emb = torch.cat((angles, angles), dim=-1)[:, None]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class GemmaAttention(nn.Module):
    """Grouped-query self-attention ``(B, T, hidden)`` → ``(B, T, hidden)``.

    Mirrors ``transformers.models.gemma3.modeling_gemma3.Gemma3Attention``.
    """

    def __init__(self, cfg: GemmaConfig) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, cfg.hidden_size, bias=False)
        self.q_norm = GemmaRMSNorm(self.head_dim, cfg.rms_norm_eps)
        self.k_norm = GemmaRMSNorm(self.head_dim, cfg.rms_norm_eps)
        # The backend scales by head_dim^-½; Gemma wants query_pre_attn_scalar^-½ (the same for the 12B: 256).
        self.q_rescale = (self.head_dim / cfg.query_pre_attn_scalar) ** 0.5

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                backend) -> torch.Tensor:
        """``x`` ``(B, T, hidden)``, RoPE ``cos``/``sin`` ``(B, 1, T, head_dim)``, additive ``mask`` ``(B, 1, T, T)``
        or None, a resolved attention ``backend`` → ``(B, T, hidden)``."""
        b, t, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2))
        k = self.k_norm(self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2))
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        if self.q_rescale != 1.0:
            q = q * self.q_rescale
        groups = self.heads // self.kv_heads
        if groups > 1:  # kv head j serves query heads j·groups … (j+1)·groups − 1
            k = k[:, :, None].expand(b, self.kv_heads, groups, t, self.head_dim).reshape(b, self.heads, t, -1)
            v = v[:, :, None].expand(b, self.kv_heads, groups, t, self.head_dim).reshape(b, self.heads, t, -1)
        out = attention(q, k, v, mask, backend)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))


class GemmaMLP(nn.Module):
    """``down(gelu_tanh(gate(x)) · up(x))``. Mirrors ``transformers.models.gemma3.modeling_gemma3.Gemma3MLP``."""

    def __init__(self, cfg: GemmaConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, hidden)`` → ``(B, T, hidden)``."""
        return self.down_proj(nn.functional.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class GemmaDecoderLayer(nn.Module):
    """One layer with its four norms (input, post-attention, pre-feed-forward, post-feed-forward).

    Mirrors ``transformers.models.gemma3.modeling_gemma3.Gemma3DecoderLayer``.
    """

    def __init__(self, cfg: GemmaConfig) -> None:
        super().__init__()
        self.self_attn = GemmaAttention(cfg)
        self.mlp = GemmaMLP(cfg)
        eps = cfg.rms_norm_eps
        self.input_layernorm = GemmaRMSNorm(cfg.hidden_size, eps)
        self.post_attention_layernorm = GemmaRMSNorm(cfg.hidden_size, eps)
        self.pre_feedforward_layernorm = GemmaRMSNorm(cfg.hidden_size, eps)
        self.post_feedforward_layernorm = GemmaRMSNorm(cfg.hidden_size, eps)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                backend) -> torch.Tensor:
        """``(B, T, hidden)`` → ``(B, T, hidden)``; other arguments as :meth:`GemmaAttention.forward`."""
        x = x + self.post_attention_layernorm(self.self_attn(self.input_layernorm(x), cos, sin, mask, backend))
        return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))


def attention_masks(attention_mask: torch.Tensor | None, batch: int, tokens: int, window: int,
                    dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
    """Additive masks ``(B, 1, T, T)`` per layer kind: causal (+ sliding window: query i sees keys j with
    ``i − j < window``) and padding keys hidden. Rows of padded queries see nothing they may use; their outputs are
    never read by LTX (pads are zeroed downstream). ``attention_mask``: 0/1 ``(B, T)`` or None (all valid).

    Mirrors ``transformers.masking_utils.create_causal_mask`` / ``create_sliding_window_causal_mask``; the keys of the
    result are the layer types (``"full_attention"``, ``"sliding_attention"``).
    """
    idx = torch.arange(tokens, device=device)
    diff = idx[:, None] - idx[None, :]
    causal = diff >= 0
    keys = (torch.ones(batch, tokens, dtype=torch.bool, device=device) if attention_mask is None
            else attention_mask.to(device).bool())
    neg = torch.finfo(dtype).min
    out = {}
    for kind, allowed in (("full_attention", causal), ("sliding_attention", causal & (diff < window))):
        allow = allowed[None, None] & keys[:, None, None, :]
        out[kind] = torch.zeros(allow.shape, dtype=dtype, device=device).masked_fill_(~allow, neg)
    return out


def check_token_ids(input_ids: torch.Tensor, vocab_size: int) -> None:
    """Check that token ids ``(B, T)`` lie in ``[0, vocab_size)``.

    Raises:
        InputError: an id lies outside the vocabulary (a tokenizer of another model).
    """
    if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= vocab_size):
        raise InputError(f"Token ids must lie in [0, {vocab_size}); got {int(input_ids.min())}…"
                         f"{int(input_ids.max())}. The tokenizer does not belong to this Gemma model.")


def scaled_embedding(embedding: nn.Embedding, input_ids: torch.Tensor, hidden_size: int) -> torch.Tensor:
    """``(B, T)`` ids (already checked) → ``(B, T, hidden)`` rows of ``embedding`` · √``hidden_size``, the factor
    rounded to the weight dtype first (Gemma-3 and Gemma-4 alike).

    Mirrors ``transformers.models.gemma3.modeling_gemma3.Gemma3TextScaledWordEmbedding``.
    """
    weight = embedding.weight
    scale = torch.tensor(hidden_size**0.5, dtype=torch.float32).to(weight.dtype)
    return embedding(input_ids) * scale.to(weight.device)


def decoder_inputs(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                   positions: torch.Tensor | None, backend: str) -> tuple[torch.Tensor, torch.Tensor, dict, object]:
    """The forward preamble shared by :class:`GemmaTextModel` and the Gemma-4 model (``model`` has ``config``
    with ``sliding_window``, ``device`` and ``embed``): ``input_ids`` ``(B, T)`` → (embeddings ``(B, T, hidden)``,
    RoPE positions ``(B, T)`` — given ``(B, T)`` / ``(T,)`` or ``0 … T−1`` —, the additive masks per layer kind of
    :func:`attention_masks` (None for one token), the resolved attention backend).

    Mirrors the start of ``transformers.models.gemma3.modeling_gemma3.Gemma3TextModel.forward``.

    Raises:
        InputError: ``input_ids`` is not ``(B, T)`` or holds ids outside the vocabulary.
        AttentionBackendError: ``backend`` is an unknown or uninstalled attention backend name.
    """
    if input_ids.ndim != 2:
        raise InputError(f"input_ids must be (batch, tokens); got shape {tuple(input_ids.shape)}.")
    input_ids = input_ids.to(model.device)
    batch, tokens = input_ids.shape
    if isinstance(backend, str):
        backend = resolve_backend(backend, model.device)
    x = model.embed(input_ids)
    if positions is None:
        positions = torch.arange(tokens, device=x.device)
    positions = positions.to(x.device).expand(batch, tokens)
    masks = (attention_masks(attention_mask, batch, tokens, model.config.sliding_window, x.dtype, x.device)
             if tokens > 1 else {FULL: None, SLIDING: None})
    return x, positions, masks, backend


def decoder_states(model: nn.Module, x: torch.Tensor, tables: dict, masks: dict, backend: object
                   ) -> list[torch.Tensor]:
    """Run ``model.layers`` (kinds ``model.config.layer_types``) on embeddings ``x`` ``(B, T, hidden)`` with the
    RoPE ``tables`` (kind → (cos, sin)) and ``masks`` (kind → mask) of :func:`decoder_inputs`; returns the embeddings
    and every layer's output, the last one after ``model.norm``: ``num_hidden_layers + 1`` tensors ``(B, T, hidden)``.

    Mirrors the layer loop of ``transformers.models.gemma3.modeling_gemma3.Gemma3TextModel.forward`` with
    ``output_hidden_states=True``.
    """
    states = [x]
    for kind, layer in zip(model.config.layer_types, model.layers, strict=True):
        x = layer(x, *tables[kind], masks[kind], backend)
        states.append(x)
    states[-1] = model.norm(x)
    return states


class GemmaTextModel(nn.Module):
    """Token ids ``(B, T)`` (+ 0/1 attention mask, left padding) → ``num_hidden_layers + 1`` hidden states
    ``(B, T, hidden)``: ``[0]`` the scaled embeddings, ``[i]`` the output of layer ``i``, ``[-1]`` after the final
    norm.

    Mirrors ``transformers.models.gemma3.modeling_gemma3.Gemma3TextModel`` called with ``output_hidden_states=True``
    (its ``hidden_states`` output), as ``GemmaTextEncoder.encode`` in ltx-core uses it.

    Raises:
        ConfigError: ``cfg`` fails :meth:`GemmaConfig.validate`.
    """

    def __init__(self, cfg: GemmaConfig) -> None:
        super().__init__()
        cfg.validate()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(GemmaDecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = GemmaRMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the weights (the embedding table's)."""
        return self.embed_tokens.weight.dtype

    @property
    def device(self) -> torch.device:
        """Device of the weights (the embedding table's)."""
        return self.embed_tokens.weight.device

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` ids → ``(B, T, hidden)`` embeddings · √hidden (the factor rounded to the weight dtype).

        Mirrors ``transformers.models.gemma3.modeling_gemma3.Gemma3TextScaledWordEmbedding``.

        Raises:
            InputError: an id lies outside the vocabulary (a tokenizer of another model).
        """
        check_token_ids(input_ids, self.embed_tokens.weight.shape[0])
        return scaled_embedding(self.embed_tokens, input_ids, self.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                positions: torch.Tensor | None = None, backend: str = "sdpa") -> list[torch.Tensor]:
        """``input_ids`` ``(B, T)``; ``attention_mask`` ``(B, T)`` 0/1 or None (all valid); ``positions`` ``(B, T)``
        or ``(T,)`` RoPE positions (default ``0 … T−1`` like Hugging Face, padding included). Returns
        ``num_hidden_layers + 1`` tensors ``(B, T, hidden)``.

        Raises:
            InputError: ``input_ids`` is not ``(B, T)`` or holds ids outside the vocabulary.
            AttentionBackendError: ``backend`` is an unknown or uninstalled attention backend name.
        """
        cfg = self.config
        x, positions, masks, backend = decoder_inputs(self, input_ids, attention_mask, positions, backend)
        tables = {kind: rope_cos_sin(positions, cfg.head_dim, cfg.rope(kind), x.dtype)
                  for kind in set(cfg.layer_types)}
        return decoder_states(self, x, tables, masks, backend)
