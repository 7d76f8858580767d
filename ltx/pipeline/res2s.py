"""Coefficients of res_2s, the official HQ sampler: a 2-stage exponential Runge-Kutta step in log-σ space.

With step size ``h = log(σ / σ_next)`` and the midpoint ``c2 = 0.5``::

    a21 = c2 · φ1(−h·c2)      b2 = φ2(−h) / c2      b1 = φ1(−h) − b2

where ``φ_j(z) = (e^z − Σ_{k<j} z^k/k!) / z^j`` (``φ_j(0) = 1/j!``).
"""

from __future__ import annotations

import functools
import math


@functools.lru_cache(maxsize=1024)
def phi(j: int, z: float) -> float:
    """``φ_j(z)`` with the small-``z`` limit ``1/j!``."""
    if abs(z) < 1e-10:
        return 1.0 / math.factorial(j)
    remainder = sum(z**k / math.factorial(k) for k in range(j))
    return (math.exp(z) - remainder) / z**j


def res2s_coefficients(h: float, c2: float = 0.5) -> tuple[float, float, float]:
    """``(a21, b1, b2)`` for a step of log-size ``h``."""
    a21 = c2 * phi(1, -h * c2)
    b2 = phi(2, -h) / c2
    b1 = phi(1, -h) - b2
    return a21, b1, b2
