"""Answer a stats or history request: the cache, and the computation it runs on a miss.

A computation reads the maintained counts when they can answer the filter
(counts/planner.py) and are ready, else scans the runs. Which one is decided
only on a miss, the first time the cache asks (a hit costs nothing of it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, TypeVar

from flask import current_app, request
from sqlalchemy.orm import Session

from ..auth import current_identity
from ..config import Settings
from ..database import SCAN as SCAN_POOL
from ..database import SNAPSHOT, Read
from ..extensions import db
from ..filters.nodes import FilterNode
from ..metrics import aggregate_query_seconds, stats_answers
from .admission import ANONYMOUS, address_caller, user_caller
from .cache import StatsCache
from .canonical import history_cache_key
from .counts.choice import history_rollup, history_unit
from .counts.planner import CountsQuery, only_a_scan_answers, plan
from .counts.reader import count_buckets, count_statuses
from .counts.state import CountsChanged, CountsState, read_state
from .history import HistoryRange
from .result import COUNTS, SCAN, Computed, StatsResult
from .scan import StatusCounts, count_by_bucket, count_by_status, hold_scan
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
        return user_caller(identity.user)
    settings: Settings = current_app.config["RUNSTATS"]
    if settings.trusted_proxies and request.remote_addr:
        return address_caller(request.remote_addr)
    return ANONYMOUS


def _hold_if_testing(session: Session) -> None:
    """A test deployment may make every scan hold its session longer, as a huge table would."""
    settings: Settings = current_app.config["RUNSTATS"]
    if settings.test_scan_sleep_ms:
        hold_scan(session, settings.test_scan_sleep_ms)


NOT_READY = object()
"""What a counts read answers when, in its snapshot, the counts turned out not ready."""


class _Computation:
    """The filter of one request, read from the counts when they answer it, else scanned.

    Every read may run on a replica (database.read); the answer's cached_at is when
    its query began, less how far behind the data it read may be.
    """

    def __init__(self, tree: FilterNode | None, statuses: Sequence[str] | None) -> None:
        self.tree = tree
        self.statuses = statuses

    @cached_property
    def _planned(self) -> tuple[CountsQuery, CountsState] | None:
        """The counts' query when they are ready and answer the filter, and the state it
        was planned with. A filter only a scan can answer costs no database round trip
        here: in a flood of them, the counts' state read was the largest part of a
        refused request (measured)."""
        if only_a_scan_answers(self.tree, self.statuses):
            return None
        state = db.read(read_state, SNAPSHOT).value
        if not state.ready:
            return None
        query = plan(self.tree, self.statuses, state.untracked_keys)
        return None if query is None else (query, state)

    @property
    def source(self) -> str:
        return SCAN if self._planned is None else COUNTS

    def _read(
        self,
        from_counts: Callable[[Session, CountsQuery, CountsState], Counted],
        scan: Callable[[Session], Counted],
    ) -> tuple[Counted, datetime, str]:
        """From the counts when planned and their state unchanged in the read's snapshot,
        else a scan. (A rebuild starting between the plan and the read makes this one
        scan unadmitted.)
        """
        planned = self._planned
        started = time.perf_counter()
        began = datetime.now(UTC)
        if planned is not None:

            def counted(session: Session) -> Any:
                try:
                    return from_counts(session, *planned)
                except CountsChanged:
                    return NOT_READY

            found = db.read(counted, SNAPSHOT)
            if found.value is not NOT_READY:
                return found.value, self._answered(COUNTS, began, started, found), COUNTS

        def scanned(session: Session) -> Counted:
            _hold_if_testing(session)
            return scan(session)

        found = db.read(scanned, SCAN_POOL)
        return found.value, self._answered(SCAN, began, started, found), SCAN

    @staticmethod
    def _answered(source: str, began: datetime, started: float, found: Read[Any]) -> datetime:
        aggregate_query_seconds.observe(time.perf_counter() - started)
        stats_answers.labels(source=source).inc()
        return began - timedelta(seconds=found.lag_seconds)


class StatsComputation(_Computation):
    def __call__(self) -> Computed:
        counts, cached_at, source = self._read(
            lambda session, query, state: count_statuses(
                session, query, self.tree, self.statuses, state
            ),
            lambda session: count_by_status(session, self.tree, self.statuses),
        )
        assert isinstance(counts, StatusCounts)
        body = stats_body(counts.by_status, counts.total_pipelines, cached_at)
        return Computed(body, cached_at, source)


class HistoryComputation(_Computation):
    def __init__(
        self, tree: FilterNode | None, statuses: Sequence[str] | None, span: HistoryRange
    ) -> None:
        super().__init__(tree, statuses)
        self.span = span

    @cached_property
    def _planned(self) -> tuple[CountsQuery, CountsState] | None:
        """As for the stats, when a rollup is kept as fine as the history's buckets."""
        planned = super()._planned
        if planned is None or history_rollup(planned[0], history_unit(self.span)) is None:
            return None
        return planned

    def __call__(self) -> Computed:
        counts, cached_at, source = self._read(
            lambda session, query, state: count_buckets(
                session, query, self.tree, self.statuses, self.span, state
            ),
            lambda session: count_by_bucket(session, self.tree, self.statuses, self.span),
        )
        return Computed(history_body(self.span, counts, cached_at), cached_at, source)


def stats(key: str, tree: FilterNode | None, statuses: Sequence[str] | None) -> StatsResult:
    return stats_cache().get(key, StatsComputation(tree, statuses), caller())


def history(
    tree: FilterNode | None, statuses: Sequence[str] | None, span: HistoryRange
) -> StatsResult:
    key = history_cache_key(tree, statuses, span.bucket, span.start, span.end)
    return stats_cache().get(key, HistoryComputation(tree, statuses, span), caller())
