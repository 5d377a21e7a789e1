"""What runstats' `GET /metrics` says, and the differences a measurement reports."""

from __future__ import annotations

from collections.abc import Mapping

from .client import HttpClient, expect

CACHE_RESULTS = ("hit", "miss", "stale", "bypass")


def scrape(base_url: str) -> dict[str, float]:
    """Samples of GET /metrics, keyed by `name{labels}` exactly as exposed."""
    client = HttpClient(base_url)
    try:
        reply = expect(client.get("/metrics"), 200, "GET /metrics")
    finally:
        client.close()
    samples: dict[str, float] = {}
    for line in reply.body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        samples[name] = float(value)
    return samples


def sample_sum(samples: Mapping[str, float], name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for key, value in samples.items():
        metric, _, rest = key.partition("{")
        if metric != name:
            continue
        if all(f'{label}="{wanted}"' in rest for label, wanted in labels.items()):
            total += value
    return total


def cache_answers(before: Mapping[str, float], after: Mapping[str, float]) -> str:
    """How the stats cache answered between two scrapes, e.g. `hit 10, miss 1, …`."""
    name = "runstats_stats_cache_requests_total"
    parts = []
    for result in CACHE_RESULTS:
        delta = sample_sum(after, name, result=result) - sample_sum(before, name, result=result)
        parts.append(f"{result} {delta:,.0f}")
    return ", ".join(parts)


def aggregates_run(before: Mapping[str, float], after: Mapping[str, float]) -> int:
    """Aggregate queries runstats ran between two scrapes, by its own metric."""
    name = "runstats_aggregate_query_seconds_count"
    return round(sample_sum(after, name) - sample_sum(before, name))
