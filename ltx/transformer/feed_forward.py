"""Feed-forward of LTX-2: Linear(4×) → GELU(tanh) → Linear. Keys ``net.0.proj``, ``net.2`` (LTX-2.5's video
feed-forward has no biases)."""

from __future__ import annotations

import torch
from torch import nn


class _GeluProjection(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, bias: bool = True) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    """``(B, T, dim)`` → ``(B, T, dim)``; ``chunks > 1`` processes the tokens in that many pieces (same result,
    peak memory of the 4× hidden activation divided by ``chunks``). ``bias=False``: both Linears without biases
    (LTX-2.5's video feed-forward, ltx-core's ``ff_bias``).

    Mirrors ``ltx_core.model.transformer.feed_forward.FeedForward`` (``net.0`` is its
    ``ltx_core.model.transformer.gelu_approx.GELUApprox``).
    """

    def __init__(self, dim: int, mult: int = 4, bias: bool = True) -> None:
        super().__init__()
        self.net = nn.Sequential(_GeluProjection(dim, dim * mult, bias), nn.Identity(),
                                 nn.Linear(dim * mult, dim, bias=bias))

    def forward(self, x: torch.Tensor, chunks: int = 1) -> torch.Tensor:
        """``x`` ``(B, T, dim)`` → ``(B, T, dim)``, over ``chunks`` token pieces (1 = all at once)."""
        if chunks <= 1 or x.shape[1] < 2:
            return self.net(x)
        return torch.cat([self.net(piece) for piece in x.chunk(chunks, dim=1)], dim=1)
