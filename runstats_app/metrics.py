"""Prometheus metrics.

Under gunicorn, `gunicorn.conf.py` points PROMETHEUS_MULTIPROC_DIR at a fresh
directory before any worker starts, so every worker writes its samples there
and /metrics (health.py) sums them (and forgets dead workers' gauges on exit).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TRANSITION_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

status_transition_seconds = Histogram(
    "runstats_status_transition_seconds",
    "Seconds a run spent in its previous status, observed at each status change.",
    ["from_status", "to_status"],
    buckets=TRANSITION_BUCKETS,
)
http_request_seconds = Histogram(
    "runstats_http_request_seconds",
    "HTTP request latency by route template, method and status code.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
stats_cache_requests = Counter(
    "runstats_stats_cache_requests",
    "Stats requests by how the cache answered (hit, miss, stale, bypass).",
    ["result"],
)
stats_cache_lock_waits = Counter(
    "runstats_stats_cache_lock_waits",
    "Stats requests that waited for another process's computation.",
)
stats_cache_redis_errors = Counter(
    "runstats_stats_cache_redis_errors",
    "Redis operations of the stats cache that failed or were skipped by the breaker.",
)
stats_cache_unavailable = Counter(
    "runstats_stats_cache_unavailable",
    "Stats requests answered 503 because no result arrived within the wait budget.",
)
stats_scans_refused = Counter(
    "runstats_stats_scans_refused",
    "Stats scans not admitted, by the bound that was full (process, hosts, client).",
    ["scope"],
)
stats_scans_running = Gauge(
    "runstats_stats_scans_running",
    "Stats scans running now (summed over live worker processes).",
    multiprocess_mode="livesum",
)
counts_fold_rows = Counter(
    "runstats_counts_folded_changes",
    "Changes (deltas) folded into the maintained counts.",
)
stats_answers = Counter(
    "runstats_stats_computations",
    "Stats and history computations by where they read (counts or scan).",
    ["source"],
)
database_reads = Counter(
    "runstats_database_reads",
    "Reads that may lag (lists, stats, history) by where they ran: primary or replica.",
    ["target"],
)
replica_lag_seconds = Gauge(
    "runstats_replica_lag_seconds",
    "How far each replica is behind the primary, as last measured.",
    ["replica"],
    multiprocess_mode="max",
)
aggregate_query_seconds = Histogram(
    "runstats_aggregate_query_seconds",
    "Duration of the stats GROUP BY query.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def observe_transition(from_status: str, to_status: str, seconds: float) -> None:
    status_transition_seconds.labels(from_status=from_status, to_status=to_status).observe(seconds)
