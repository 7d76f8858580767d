"""``Embeddings1DConnector``: a small 1-D transformer that turns projected text features into the context.

Padding is removed by moving each sample's valid tokens to the front and filling the rest with the learnable
registers (``learnable_registers[j mod R]`` at position ``j``), so the output has no padding and needs no mask.
Then ``num_layers`` pre-RMSNorm blocks (self-attention with q/k RMSNorm and 1-D split RoPE over token index,
GELU feed-forward) and a final RMSNorm without weight.

Checkpoint prefix: ``model.diffusion_model.{video,audio}_embeddings_connector.``; keys
``transformer_1d_blocks.N.attn1.*``, ``transformer_1d_blocks.N.ff.net.*``, ``learnable_registers``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import ConnectorConfig
from ..errors import InputError
from ..transformer.attention import Attention
from ..transformer.feed_forward import FeedForward
from ..transformer.rope import rope_tables


def _rms(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.rms_norm(x, (x.shape[-1],), eps=1e-6)


class _Block1D(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, gated: bool) -> None:
        super().__init__()
        self.attn1 = Attention(dim, heads, head_dim, gated=gated)
        self.ff = FeedForward(dim)

    def forward(self, x: torch.Tensor, pe, backend: str) -> torch.Tensor:
        x = x + self.attn1(_rms(x), pe=pe, backend=backend)
        return x + self.ff(_rms(x))


class Embeddings1DConnector(nn.Module):
    """``(B, T, D)`` features + 0/1 mask ``(B, T)`` → ``(B, T, D)`` context (``T`` a multiple of the registers).

    Mirrors ``ltx_core.text_encoders.gemma.embeddings_connector.Embeddings1DConnector`` (diffusers:
    ``diffusers.pipelines.ltx2.connectors.LTX2ConnectorTransformer1d``).
    """

    def __init__(self, cfg: ConnectorConfig) -> None:
        super().__init__()
        self.config = cfg
        dim = cfg.inner_dim
        self.transformer_1d_blocks = nn.ModuleList(
            _Block1D(dim, cfg.num_attention_heads, cfg.attention_head_dim, cfg.apply_gated_attention)
            for _ in range(cfg.num_layers)
        )
        self.learnable_registers = nn.Parameter(torch.empty(cfg.num_learnable_registers, dim))

    def replace_padding(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``features`` ``(B, T, D)`` with the valid tokens of ``mask`` ``(B, T)`` first (in order), then registers;
        returns ``(B, T, D)``.

        Mirrors ``Embeddings1DConnector._replace_padded_with_learnable_registers``.

        Raises:
            InputError: ``T`` is not a multiple of ``num_learnable_registers``.
        """
        batch, tokens, _ = features.shape
        registers = self.config.num_learnable_registers
        if tokens % registers != 0:
            raise InputError(f"The text sequence length ({tokens}) must be a multiple of the connector's "
                             f"{registers} registers; pad the prompt tokens to a multiple of {registers}.")
        regs = self.learnable_registers.to(features.dtype).repeat(tokens // registers, 1)
        valid = mask.bool()
        lengths = valid.sum(dim=1)
        # Stable order: valid tokens keep their order and move to the front.
        order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)
        moved = torch.gather(features, 1, order.unsqueeze(-1).expand_as(features))
        keep = (torch.arange(tokens, device=features.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        return torch.where(keep, moved, regs.unsqueeze(0).expand(batch, -1, -1))

    def forward(self, features: torch.Tensor, mask: torch.Tensor, backend: str = "sdpa") -> torch.Tensor:
        """``features`` ``(B, T, D)`` + 0/1 ``mask`` ``(B, T)`` → context ``(B, T, D)`` (no padding left).

        Args:
            backend: an attention backend already resolved by :func:`rs_ltxv.ops.resolve_backend`, or a callable.

        Raises:
            InputError: as :meth:`replace_padding`.
        """
        cfg = self.config
        x = self.replace_padding(features, mask) if cfg.num_learnable_registers else features
        positions = torch.arange(x.shape[1], dtype=torch.float32, device=x.device)[None, None, :]
        pe = rope_tables(positions.expand(x.shape[0], 1, -1), dim=cfg.inner_dim, heads=cfg.num_attention_heads,
                         max_pos=cfg.positional_embedding_max_pos, theta=cfg.positional_embedding_theta,
                         layout=cfg.rope_layout, double_precision=cfg.double_precision_rope, dtype=x.dtype)
        for block in self.transformer_1d_blocks:
            x = block(x, pe, backend)
        return _rms(x)
