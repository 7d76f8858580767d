"""Gemma-4 (``gemma4_unified``) text decoder that returns every hidden state, as LTX-2.5's prompt path needs.

Per layer: ``h = x + post_attn_norm(attn(input_norm(x)))``, ``h = h + post_ff_norm(mlp(pre_ff_norm(h)))``, then
``h · layer_scalar`` (a stored per-layer scalar). Attention: RMSNorm on q and k (weighted), a weightless RMSNorm on
v, RoPE per layer type (proportional for the global layers: a part of each head stays unrotated), scale 1 (no
``1/√d``), grouped key/value heads; global layers are ``global_head_dim`` wide and, with ``attention_k_eq_v``, take
their values from the key projection (no ``v_proj``). RMSNorm multiplies by ``w`` (not ``1 + w`` as Gemma-3) and
computes in float32. The MLP is Gemma-3's ``down(gelu_tanh(gate(x)) · up(x))``; embeddings are scaled by √hidden
rounded to the weight dtype. Token ids of the image / video / audio placeholders are read as the pad id, as the
multimodal model does before its text model runs. No LM head, no vision or audio embedders.

Parameter names are Hugging Face's ``Gemma4UnifiedTextModel`` names (``embed_tokens.weight``,
``layers.N.self_attn.{q,k,v,o}_proj.weight`` (no ``v_proj`` in K=V layers), ``layers.N.self_attn.{q,k}_norm.weight``,
``layers.N.mlp.{gate,up,down}_proj.weight``, ``layers.N.{input,post_attention,pre_feedforward,post_feedforward}_
layernorm.weight``, ``layers.N.layer_scalar``, ``norm.weight``). ltx-core 1.2.0 runs the Hugging Face model
(``ltx_core.text_encoders.gemma.encoders.base_encoder.LTXGemmaTextEncoder.encode`` → ``Gemma4UnifiedModel``); each
class here names its ``transformers.models.gemma4_unified.modeling_gemma4_unified`` counterpart.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...ops import attention
from .gemma import GemmaMLP, check_token_ids, decoder_inputs, decoder_states, scaled_embedding
from .gemma4_config import Gemma4Config


class Gemma4RMSNorm(nn.Module):
    """``x · (mean(x²) + eps)^-½ · w`` over the last dim in float32, cast back; without ``w`` when ``with_scale`` is
    False (the value norm).

    Mirrors ``transformers.models.gemma4_unified.modeling_gemma4_unified.Gemma4UnifiedRMSNorm``.
    """

    def __init__(self, dim: int, eps: float, with_scale: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if with_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(…, dim)`` → ``(…, dim)``, same shape and dtype."""
        h = x.float()
        h = h * torch.pow(h.pow(2).mean(-1, keepdim=True) + self.eps, -0.5)
        if self.weight is not None:
            h = h * self.weight.float()
        return h.to(x.dtype)


def rope_tables(positions: torch.Tensor, inv_freq: torch.Tensor,
                dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``positions`` ``(B, T)`` and ``inv_freq`` ``(D/2,)`` (float32) → cos, sin ``(B, T, 1, D)`` in ``dtype``
    (half-split layout; angles computed in float32).

    Mirrors ``Gemma4UnifiedTextRotaryEmbedding.forward`` (``transformers.models.gemma4_unified``)."""
    angles = positions.float()[:, :, None] * inv_freq.to(positions.device)[None, None, :]
    emb = torch.cat((angles, angles), dim=-1)[:, :, None]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class Gemma4Attention(nn.Module):
    """Self-attention of one layer ``(B, T, hidden)`` → ``(B, T, hidden)``, sliding or global (``layer_type``).

    Mirrors ``transformers.models.gemma4_unified.modeling_gemma4_unified.Gemma4UnifiedTextAttention`` (no KV
    sharing between layers).
    """

    def __init__(self, cfg: Gemma4Config, layer_type: str) -> None:
        super().__init__()
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.kv_heads(layer_type)
        self.head_dim = cfg.attn_head_dim(layer_type)
        self.q_proj = nn.Linear(cfg.hidden_size, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = (None if cfg.shares_kv(layer_type)
                       else nn.Linear(cfg.hidden_size, self.kv_heads * self.head_dim, bias=False))
        self.o_proj = nn.Linear(self.heads * self.head_dim, cfg.hidden_size, bias=False)
        self.q_norm = Gemma4RMSNorm(self.head_dim, cfg.rms_norm_eps)
        self.k_norm = Gemma4RMSNorm(self.head_dim, cfg.rms_norm_eps)
        self.v_norm = Gemma4RMSNorm(self.head_dim, cfg.rms_norm_eps, with_scale=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                backend) -> torch.Tensor:
        """``x`` ``(B, T, hidden)``, RoPE ``cos``/``sin`` ``(B, T, 1, head_dim)``, additive ``mask`` ``(B, 1, T, T)``
        or None, a resolved attention ``backend`` → ``(B, T, hidden)``."""
        b, t, _ = x.shape
        q = _rotate(self.q_norm(self.q_proj(x).view(b, t, self.heads, self.head_dim)), cos, sin).transpose(1, 2)
        k_raw = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim)
        v_raw = k_raw if self.v_proj is None else self.v_proj(x).view(b, t, self.kv_heads, self.head_dim)
        k = _rotate(self.k_norm(k_raw), cos, sin).transpose(1, 2)
        v = self.v_norm(v_raw).transpose(1, 2)
        groups = self.heads // self.kv_heads
        if groups > 1:  # kv head j serves query heads j·groups … (j+1)·groups − 1
            k = k[:, :, None].expand(b, self.kv_heads, groups, t, self.head_dim).reshape(b, self.heads, t, -1)
            v = v[:, :, None].expand(b, self.kv_heads, groups, t, self.head_dim).reshape(b, self.heads, t, -1)
        if backend == "sdpa":  # unscaled attention, exactly
            if mask is not None and mask.dtype != q.dtype:
                mask = mask.to(q.dtype)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)
        else:  # the other backends scale by head_dim^-½: undo it on q
            out = attention(q * self.head_dim**0.5, k, v, mask, backend)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))


class Gemma4DecoderLayer(nn.Module):
    """One layer: attention and MLP, each between a pre- and a post-norm, then ``× layer_scalar``.

    Mirrors ``transformers.models.gemma4_unified.modeling_gemma4_unified.Gemma4UnifiedTextDecoderLayer``.
    """

    def __init__(self, cfg: Gemma4Config, layer_type: str) -> None:
        super().__init__()
        self.self_attn = Gemma4Attention(cfg, layer_type)
        self.mlp = GemmaMLP(cfg)
        eps = cfg.rms_norm_eps
        self.input_layernorm = Gemma4RMSNorm(cfg.hidden_size, eps)
        self.post_attention_layernorm = Gemma4RMSNorm(cfg.hidden_size, eps)
        self.pre_feedforward_layernorm = Gemma4RMSNorm(cfg.hidden_size, eps)
        self.post_feedforward_layernorm = Gemma4RMSNorm(cfg.hidden_size, eps)
        self.register_buffer("layer_scalar", torch.ones(1))

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                backend) -> torch.Tensor:
        """``(B, T, hidden)`` → ``(B, T, hidden)``; other arguments as :meth:`Gemma4Attention.forward`."""
        x = x + self.post_attention_layernorm(self.self_attn(self.input_layernorm(x), cos, sin, mask, backend))
        x = x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))
        return x * self.layer_scalar


class Gemma4TextModel(nn.Module):
    """Token ids ``(B, T)`` (+ 0/1 attention mask, left padding) → ``num_hidden_layers + 1`` hidden states
    ``(B, T, hidden)``: ``[0]`` the scaled embeddings, ``[i]`` the output of layer ``i``, ``[-1]`` after the final
    norm. Same interface as :class:`~.gemma.GemmaTextModel`, so :class:`~.encoder.PromptEncoder` runs either.

    Mirrors ``transformers.models.gemma4_unified.modeling_gemma4_unified.Gemma4UnifiedModel`` called with
    ``output_hidden_states=True`` on text only (its ``hidden_states``), as ltx-core 1.2.0's
    ``LTXGemmaTextEncoder.encode`` uses it.

    Raises:
        ConfigError: ``cfg`` fails :meth:`Gemma4Config.validate`.
    """

    def __init__(self, cfg: Gemma4Config) -> None:
        super().__init__()
        cfg.validate()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Gemma4DecoderLayer(cfg, kind) for kind in cfg.layer_types)
        self.norm = Gemma4RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the weights (the embedding table's)."""
        return self.embed_tokens.weight.dtype

    @property
    def device(self) -> torch.device:
        """Device of the weights (the embedding table's)."""
        return self.embed_tokens.weight.device

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` ids → ``(B, T, hidden)`` embeddings · √hidden (the factor rounded to the weight dtype);
        multimodal placeholder ids read as the pad id.

        Mirrors ``Gemma4UnifiedTextScaledWordEmbedding`` after ``Gemma4UnifiedModel.forward``'s placeholder
        replacement (``transformers.models.gemma4_unified``).

        Raises:
            InputError: an id lies outside the vocabulary (a tokenizer of another model).
        """
        check_token_ids(input_ids, self.embed_tokens.weight.shape[0])
        placeholders = torch.tensor(self.config.multimodal_token_ids, dtype=input_ids.dtype, device=input_ids.device)
        if placeholders.numel():
            input_ids = torch.where(torch.isin(input_ids, placeholders), self.config.pad_token_id, input_ids)
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
        tables = {kind: rope_tables(positions, cfg.rope(kind).inv_freq(cfg.rope_dim(kind)), x.dtype)
                  for kind in set(cfg.layer_types)}
        return decoder_states(self, x, tables, masks, backend)
