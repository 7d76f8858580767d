"""Per-token AdaLN modulation stored once per distinct timestep.

LTX-2 gives every token its own timestep (``denoise_mask · σ``), and ltx-core materialises a
``(B, T, coef·D)`` modulation tensor for the whole sequence
(``ltx_core.model.transformer.transformer.BasicAVTransformerBlock.get_ada_values``). Tokens share only a handful
of distinct timesteps (usually one, two with conditioning), so we keep one row per distinct value and an index, and
expand to the per-token values only inside each block, a few rows at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Modulation:
    """``rows`` ``(N, coef·D)`` and ``index`` ``(B, T)`` into them; ``index`` None means one row per batch item
    (``N == B``) shared by all tokens of that item.

    Replaces the per-token ``(B, T, coef·D)`` timestep tensor of
    ``ltx_core.model.transformer.transformer_args.TransformerArgs`` (same values, stored once per distinct timestep).
    """

    rows: torch.Tensor
    index: torch.Tensor | None

    def values(self, table: torch.Tensor, start: int, stop: int) -> tuple[torch.Tensor, ...]:
        """``table[start:stop] + rows[..., start:stop]`` per token, as ``stop - start`` tensors of ``(B, T|1, D)``.

        Mirrors ``ltx_core.model.transformer.transformer.BasicAVTransformerBlock.get_ada_values``.

        Args:
            table: the block's learned ``(coef, D)`` scale/shift table.
        """
        coef = table.shape[0]
        rows = self.rows.unflatten(-1, (coef, -1))[:, start:stop]  # (N, k, D)
        rows = table[start:stop].to(device=rows.device, dtype=rows.dtype) + rows
        per_token = rows.unsqueeze(1) if self.index is None else rows[self.index]  # (B, T|1, k, D)
        return per_token.unbind(dim=2)

    def per_token(self) -> torch.Tensor:
        """The full ``(B, T|1, coef·D)`` tensor (tests and debugging)."""
        return self.rows.unsqueeze(1) if self.index is None else self.rows[self.index]

    def slice_tokens(self, start: int, stop: int) -> Modulation:
        """The modulation of tokens ``[start, stop)`` (``index`` ``(B, stop − start)``; rows are shared)."""
        return self if self.index is None else Modulation(self.rows, self.index[:, start:stop])


def distinct_timesteps(timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Split ``(B, T)`` timesteps into distinct values and an index.

    Returns ``(values (B,), None)`` when every item's tokens share one timestep, else ``(values (N,), index (B, T))``
    (``values[index]`` gives back ``timesteps``). No ltx-core counterpart (it embeds every token's timestep).
    """
    if timesteps.shape[1] == 0 or bool((timesteps == timesteps[:, :1]).all()):
        return timesteps[:, 0], None
    values, index = torch.unique(timesteps, return_inverse=True)
    return values, index
