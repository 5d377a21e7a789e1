"""Reading the app's Prometheus metrics in process."""

from __future__ import annotations

from typing import Any


def _samples(child: Any, suffix: str) -> float:
    return sum(
        sample.value
        for metric in child.collect()
        for sample in metric.samples
        if sample.name.endswith(suffix)
    )


def observed_count(histogram_child: Any) -> float:
    """How many observations a labelled histogram has recorded."""
    return _samples(histogram_child, "_count")


def counted(counter_child: Any) -> float:
    """A labelled counter's value."""
    return _samples(counter_child, "_total")
