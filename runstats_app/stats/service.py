"""The aggregate: one GROUP BY over the list's WHERE clauses."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..filters.nodes import FilterNode
from ..filters.sql import build_run_filter
from ..metrics import aggregate_query_seconds
from ..models import PipelineRun
from ..statuses import STATUS_NAMES
from ..timefmt import format_timestamp


def count_by_status(
    session: Session, tree: FilterNode | None, statuses: Sequence[str] | None
) -> dict[str, int]:
    """Counts for every status, zeros included."""
    query = (
        select(PipelineRun.status, func.count())
        .where(*build_run_filter(tree, statuses))
        .group_by(PipelineRun.status)
    )
    started = time.perf_counter()
    try:
        rows = session.execute(query).all()
    finally:
        aggregate_query_seconds.observe(time.perf_counter() - started)
    found = {status: int(count) for status, count in rows}
    return {name: found.get(name, 0) for name in STATUS_NAMES}


def stats_body(counts: dict[str, int], cached_at: datetime) -> bytes:
    """The response body, serialised once and cached as bytes."""
    return json.dumps(
        {
            "total_runs": sum(counts.values()),
            "counts_by_status": counts,
            "cached_at": format_timestamp(cached_at),
        },
        separators=(",", ":"),
    ).encode()


def compute_stats_body(
    session: Session, tree: FilterNode | None, statuses: Sequence[str] | None
) -> bytes:
    cached_at = datetime.now(UTC)
    return stats_body(count_by_status(session, tree, statuses), cached_at)
