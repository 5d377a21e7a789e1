"""The statistics the report uses: medians and nearest-rank percentiles."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

from .errors import HarnessError


def median(values: Iterable[float]) -> float:
    items = list(values)
    if not items:
        raise HarnessError("median of nothing")
    return float(statistics.median(items))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        raise HarnessError("percentile of nothing")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return float(ordered[rank - 1])
