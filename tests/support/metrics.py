"""Reading the app's Prometheus metrics in process."""

from __future__ import annotations

from typing import Any


def observed_count(histogram_child: Any) -> float:
    """How many observations a labelled histogram has recorded."""
    return sum(
        sample.value
        for metric in histogram_child.collect()
        for sample in metric.samples
        if sample.name.endswith("_count")
    )


def counted(counter_child: Any) -> float:
    """A labelled counter's value."""
    return sum(
        sample.value
        for metric in counter_child.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
