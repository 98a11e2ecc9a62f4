"""Percentiles, in one place, for every stage that shows a turn-time p50/p95.

It sits beside `records` on purpose: the call driver (run), the pace checks (check) and the
reporters and notifiers (report) all use it, and none may import a later stage.

Two entry points with the same interpolation (linear between closest ranks, numpy's default):
`quantile` takes sorted values and a fraction (0.95), `percentile` any values and a
percentage (95). They work the rank out the way their callers always have, so results stay
identical to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["percentile", "quantile"]


def quantile(sorted_values: Sequence[float], fraction: float) -> float:
    """The `fraction` (0..1) quantile of already sorted, non-empty values (one value comes back as is)."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    return _at(sorted_values, (len(sorted_values) - 1) * fraction)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) of any values, or None for no values. Sorts a copy."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    data = sorted(values)
    return _at(data, (len(data) - 1) * q / 100)


def _at(data: Sequence[float], pos: float) -> float:
    """The value at fractional rank `pos` of sorted `data`, interpolated between neighbours."""
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(data[lo])
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)
