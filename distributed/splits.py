"""How W ranks share a sequence: contiguous token ranges and head groups that differ by at most one.

Nothing is padded: uneven all-to-all split sizes carry odd counts, so every kernel (flash, sage) stays usable and no
key mask is needed. Larger shares go to the first ranks; guide tokens, appended at the end of the video sequence,
land on the last ranks. Yunchang / xDiT require ``S % W == 0`` and ``H % W == 0`` and pad instead
(``yunchang.comm.all_to_all.all_to_all_4D``); this is the uneven variant.
"""

from __future__ import annotations

from ..ltx.errors import InputError


def token_splits(total: int, world: int) -> list[int]:
    """``world`` contiguous share sizes of ``total`` items (tokens or heads), differing by at most one, larger first.

    Raises:
        InputError: ``world`` < 1 or ``total`` < 0.
    """
    if world < 1 or total < 0:
        raise InputError(f"Cannot split {total} items over {world} ranks.")
    base, extra = divmod(total, world)
    return [base + (1 if r < extra else 0) for r in range(world)]


def token_range(total: int, world: int, rank: int) -> tuple[int, int]:
    """``[start, stop)`` of rank ``rank``'s share of ``total`` items (see :func:`token_splits`).

    Raises:
        InputError: ``rank`` is not in ``0 … world − 1`` (or as :func:`token_splits`).
    """
    sizes = token_splits(total, world)
    if not 0 <= rank < world:
        raise InputError(f"Rank {rank} is outside 0…{world - 1}.")
    start = sum(sizes[:rank])
    return start, start + sizes[rank]


def head_splits(heads: int, world: int) -> list[int]:
    """Attention heads per rank while the sequence is gathered: every rank needs at least one.

    Raises:
        InputError: more ranks than heads (the message says how many GPUs can be used).
    """
    if world > heads:
        raise InputError(f"{world} GPUs cannot share attention with {heads} heads; use at most {heads} GPUs.")
    return token_splits(heads, world)
