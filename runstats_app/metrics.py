"""Prometheus metrics; under gunicorn they live in PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

from prometheus_client import Histogram

TRANSITION_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600)

status_transition_seconds = Histogram(
    "runstats_status_transition_seconds",
    "Seconds a run spent in its previous status, observed at each status change.",
    ["from_status", "to_status"],
    buckets=TRANSITION_BUCKETS,
)


def observe_transition(from_status: str, to_status: str, seconds: float) -> None:
    status_transition_seconds.labels(from_status=from_status, to_status=to_status).observe(
        seconds
    )
