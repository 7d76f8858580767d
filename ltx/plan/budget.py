"""Memory sizes written by people ("24GB", "24 GiB", "16000 MiB", "24") → bytes.

GPU makers' "GB" is the binary one (a "24 GB" card has 24 GiB), so GB and GiB both mean 2**30 bytes here, MB and
MiB 2**20, TB and TiB 2**40; a bare number is GiB. No ltx-core counterpart.
"""

from __future__ import annotations

import math
import re

from ..errors import InputError

UNITS: dict[str, int] = {"": 2**30, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20,
                         "mib": 2**20, "g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40, "tib": 2**40}

_SIZE = re.compile(r"^\s*([-+]?\s*(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))\s*([a-zA-Z]*)\s*$")  # a sign: refused below


def parse_memory_size(text: str | int | float, what: str = "--vram") -> int:
    """``text`` → bytes (int, > 0): "24GB", "24 GiB", "23.5G", "16000MiB", "24" (GiB) or a number of GiB.

    Raises:
        InputError: not a positive number followed by an optional unit of :data:`UNITS`.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        number, unit = float(text), ""
    else:
        match = _SIZE.match(str(text))
        if match is None or match.group(2).lower() not in UNITS:
            raise InputError(f"{what} {text!r} is not a memory size; write a number and a unit, e.g. 24GB, "
                             "24 GiB, 16000MiB (GB = GiB = 2^30 bytes; a bare number is GiB).")
        number, unit = float(match.group(1).replace(" ", "")), match.group(2).lower()
    if not math.isfinite(number) or number <= 0:
        raise InputError(f"{what} must be a positive size, e.g. 24GB; got {text!r}.")
    return int(number * UNITS[unit])


def format_bytes(n: int) -> str:
    """``n`` bytes as GiB with two decimals ("21.47 GiB"), or MiB below 1 GiB ("310.0 MiB")."""
    return f"{n / 2**30:.2f} GiB" if abs(n) >= 2**30 else f"{n / 2**20:.1f} MiB"
