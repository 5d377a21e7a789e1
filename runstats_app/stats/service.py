"""Answer a stats or history request: the cache, and the computation it runs on a miss."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from flask import current_app, request
from sqlalchemy.orm import Session

from ..auth import current_identity
from ..config import Settings
from ..extensions import db
from ..filters.nodes import FilterNode
from ..metrics import aggregate_query_seconds
from .cache import StatsCache
from .canonical import history_cache_key
from .history import HistoryRange
from .result import SCAN, Computed, StatsResult
from .scan import count_by_bucket, count_by_status, hold_scan
from .schemas import history_body, stats_body

Counted = TypeVar("Counted")


def stats_cache() -> StatsCache:
    cache: StatsCache = current_app.extensions["runstats_stats_cache"]
    return cache


def caller() -> str:
    """Who asks, for a fair share of the scans: the token's user, else the client's address
    when a trusted proxy says it (RUNSTATS_TRUSTED_PROXIES), else one shared anonymous caller."""
    identity = current_identity()
    if identity is not None:
        return f"user:{identity.user}"
    settings: Settings = current_app.config["RUNSTATS"]
    if settings.trusted_proxies and request.remote_addr:
        return f"address:{request.remote_addr}"
    return "anonymous"


@contextmanager
def _scan_session() -> Iterator[Session]:
    """The scans' session; a test deployment may make every scan hold it longer."""
    settings: Settings = current_app.config["RUNSTATS"]
    with db.scan_session() as session:
        if settings.test_scan_sleep_ms:
            hold_scan(session, settings.test_scan_sleep_ms)
        yield session


def _timed_scan(count: Callable[[Session], Counted]) -> tuple[Counted, datetime]:
    cached_at = datetime.now(UTC)
    started = time.perf_counter()
    try:
        with _scan_session() as session:
            return count(session), cached_at
    finally:
        aggregate_query_seconds.observe(time.perf_counter() - started)


@dataclass(frozen=True)
class ScanStats:
    """Counts by status (and distinct pipelines) read from the runs."""

    tree: FilterNode | None
    statuses: Sequence[str] | None
    source: str = SCAN

    def __call__(self) -> Computed:
        counts, cached_at = _timed_scan(
            lambda session: count_by_status(session, self.tree, self.statuses)
        )
        body = stats_body(counts.by_status, counts.total_pipelines, cached_at)
        return Computed(body, cached_at, SCAN)


@dataclass(frozen=True)
class ScanHistory:
    """Counts by status per bucket read from the runs."""

    tree: FilterNode | None
    statuses: Sequence[str] | None
    span: HistoryRange
    source: str = SCAN

    def __call__(self) -> Computed:
        counts, cached_at = _timed_scan(
            lambda session: count_by_bucket(session, self.tree, self.statuses, self.span)
        )
        return Computed(history_body(self.span, counts, cached_at), cached_at, SCAN)


def stats(key: str, tree: FilterNode | None, statuses: Sequence[str] | None) -> StatsResult:
    return stats_cache().get(key, ScanStats(tree, statuses), caller())


def history(
    tree: FilterNode | None, statuses: Sequence[str] | None, span: HistoryRange
) -> StatsResult:
    key = history_cache_key(tree, statuses, span.bucket, span.start, span.end)
    return stats_cache().get(key, ScanHistory(tree, statuses, span), caller())
