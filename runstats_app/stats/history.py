"""Counts by status per hour or day of `created_at`: the data behind the runs-per-day chart.

One grouped query over the list's WHERE clauses plus the time range; every
bucket of the range is present, zeros included. Buckets are UTC hours or days,
and a range is widened to whole buckets (start rounded down, end up), so that
equivalent ranges share one cache entry and no bucket is counted in part.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, select
from sqlalchemy.orm import Session

from ..errors import BadRequest
from ..filters.nodes import FilterNode
from ..filters.sql import build_run_filter
from ..models import PipelineRun
from ..statuses import STATUS_NAMES
from ..timefmt import format_timestamp

BUCKETS: dict[str, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
DEFAULT_SPAN: dict[str, timedelta] = {"hour": timedelta(hours=48), "day": timedelta(days=30)}
MAX_BUCKETS = 400
BUCKET_TEXT_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass(frozen=True)
class HistoryRange:
    bucket: str
    start: datetime
    end: datetime

    @property
    def starts(self) -> list[datetime]:
        step = BUCKETS[self.bucket]
        count = (self.end - self.start) // step
        return [self.start + step * index for index in range(count)]


def floor_to_bucket(moment: datetime, bucket: str) -> datetime:
    moment = moment.astimezone(UTC)
    if bucket == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def _range_error(field: str, message: str) -> BadRequest:
    return BadRequest(f"{field}: {message}", {"query": {field: [message]}})


def resolve_range(
    bucket: str, start: datetime | None, end: datetime | None, now: datetime
) -> HistoryRange:
    """The whole-bucket range a request asks for; defaults end with the bucket holding `now`.

    400 (naming the limit) for a range of no bucket or more than MAX_BUCKETS.
    """
    step = BUCKETS[bucket]
    try:
        if end is None:
            aligned_end = floor_to_bucket(now, bucket) + step
        else:
            aligned_end = floor_to_bucket(end, bucket)
            if aligned_end < end:
                aligned_end += step
    except OverflowError:
        raise _range_error("end_time", "Out of the supported date range.") from None
    try:
        if start is None:
            aligned_start = aligned_end - DEFAULT_SPAN[bucket]
        else:
            aligned_start = floor_to_bucket(start, bucket)
    except OverflowError:
        raise _range_error("start_time", "Out of the supported date range.") from None
    if aligned_start >= aligned_end:
        raise _range_error("start_time", "start_time must be before end_time.")
    count = (aligned_end - aligned_start) // step
    if count > MAX_BUCKETS:
        raise _range_error(
            "end_time" if start is None else "start_time",
            f"The range spans {count} {bucket} buckets; the limit is {MAX_BUCKETS} "
            "(bucket limit).",
        )
    return HistoryRange(bucket, aligned_start, aligned_end)


def bucket_start(column: Any, bucket: str, dialect: str) -> ColumnElement[str]:
    """The start of the UTC bucket holding `column`, as 'YYYY-MM-DDTHH:MM:SS' text.

    The only dialect-specific piece. Constants are inlined (bucket is one of
    BUCKETS) so that the SELECT and GROUP BY expressions render identically.
    """
    if bucket not in BUCKETS:
        raise ValueError(f"unknown bucket {bucket!r}")
    if dialect == "postgresql":
        truncated = func.date_trunc(
            literal_column(f"'{bucket}'"), func.timezone(literal_column("'UTC'"), column)
        )
        return func.to_char(truncated, literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS'"))
    if dialect == "sqlite":
        # SQLite holds naive UTC text ('YYYY-MM-DD HH:MM:SS.ffffff').
        pattern = "%Y-%m-%dT%H:00:00" if bucket == "hour" else "%Y-%m-%dT00:00:00"
        return func.strftime(literal_column(f"'{pattern}'"), column)
    raise NotImplementedError(f"no bucket expression for {dialect}")


def count_by_bucket(
    session: Session,
    tree: FilterNode | None,
    statuses: Sequence[str] | None,
    span: HistoryRange,
) -> dict[datetime, dict[str, int]]:
    """Counts by status for every bucket of the range, zeros included."""
    dialect = session.get_bind().dialect.name
    started = bucket_start(PipelineRun.created_at, span.bucket, dialect)
    query = (
        select(started, PipelineRun.status, func.count())
        .where(
            *build_run_filter(tree, statuses),
            PipelineRun.created_at >= span.start,
            PipelineRun.created_at < span.end,
        )
        .group_by(started, PipelineRun.status)
    )
    counts = {moment: dict.fromkeys(STATUS_NAMES, 0) for moment in span.starts}
    for text, status, count in session.execute(query).all():
        moment = datetime.strptime(text, BUCKET_TEXT_FORMAT).replace(tzinfo=UTC)
        counts[moment][status] = int(count)
    return counts


def history_body(
    span: HistoryRange, counts: dict[datetime, dict[str, int]], cached_at: datetime
) -> bytes:
    """The response body, serialised once and cached as bytes."""
    return json.dumps(
        {
            "bucket": span.bucket,
            "start_time": format_timestamp(span.start),
            "end_time": format_timestamp(span.end),
            "buckets": [
                {
                    "start_time": format_timestamp(moment),
                    "total_runs": sum(by_status.values()),
                    "counts_by_status": by_status,
                }
                for moment, by_status in counts.items()
            ],
            "cached_at": format_timestamp(cached_at),
        },
        separators=(",", ":"),
    ).encode()


def compute_history_body(
    session: Session,
    tree: FilterNode | None,
    statuses: Sequence[str] | None,
    span: HistoryRange,
) -> bytes:
    cached_at = datetime.now(UTC)
    return history_body(span, count_by_bucket(session, tree, statuses, span), cached_at)
