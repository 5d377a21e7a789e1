"""Answer a stats or history request: the cache, and the computation it runs on a miss."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app

from ..extensions import db
from ..filters.nodes import FilterNode
from ..metrics import aggregate_query_seconds
from .cache import StatsCache
from .canonical import history_cache_key
from .history import HistoryRange
from .result import SCAN, Computed, StatsResult
from .scan import count_by_bucket, count_by_status
from .schemas import history_body, stats_body


def stats_cache() -> StatsCache:
    cache: StatsCache = current_app.extensions["runstats_stats_cache"]
    return cache


@dataclass(frozen=True)
class ScanStats:
    """Counts by status (and distinct pipelines) read from the runs."""

    tree: FilterNode | None
    statuses: Sequence[str] | None
    source: str = SCAN

    def __call__(self) -> Computed:
        cached_at = datetime.now(UTC)
        started = time.perf_counter()
        try:
            counts = count_by_status(db.session(), self.tree, self.statuses)
        finally:
            aggregate_query_seconds.observe(time.perf_counter() - started)
        return Computed(
            stats_body(counts.by_status, counts.total_pipelines, cached_at), cached_at, SCAN
        )


@dataclass(frozen=True)
class ScanHistory:
    """Counts by status per bucket read from the runs."""

    tree: FilterNode | None
    statuses: Sequence[str] | None
    span: HistoryRange
    source: str = SCAN

    def __call__(self) -> Computed:
        cached_at = datetime.now(UTC)
        started = time.perf_counter()
        try:
            counts = count_by_bucket(db.session(), self.tree, self.statuses, self.span)
        finally:
            aggregate_query_seconds.observe(time.perf_counter() - started)
        return Computed(history_body(self.span, counts, cached_at), cached_at, SCAN)


def stats(key: str, tree: FilterNode | None, statuses: Sequence[str] | None) -> StatsResult:
    return stats_cache().get(key, ScanStats(tree, statuses))


def history(
    tree: FilterNode | None, statuses: Sequence[str] | None, span: HistoryRange
) -> StatsResult:
    key = history_cache_key(tree, statuses, span.bucket, span.start, span.end)
    return stats_cache().get(key, ScanHistory(tree, statuses, span))
