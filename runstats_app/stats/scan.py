"""Aggregates that read the runs: GROUP BY over the list's own WHERE clauses.

What a stats answer means is defined here: exactly what these queries count
over the runs at that moment. Maintained counts, where a filter allows them,
must answer the same.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, literal_column, select, text, union_all
from sqlalchemy.orm import Session

from ..database import STATEMENT_TAG
from ..filters.nodes import FilterNode
from ..filters.sql import build_run_filter
from ..models import PipelineRun
from .history import HistoryRange

BUCKET_TEXT_FORMAT = "%Y-%m-%dT%H:%M:%S"
ALL_STATUSES = None
SCAN = {STATEMENT_TAG: "stats-scan"}


def hold_scan(session: Session, milliseconds: int) -> None:
    """Keep a scan busy for a while, as a scan of a huge table would (a test deployment's hook).

    On PostgreSQL it is a tagged statement of the scan's own session, so the
    database sees (and pg_stat_activity shows) a scan running meanwhile.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_sleep(:seconds)").execution_options(**SCAN),
            {"seconds": milliseconds / 1000},
        )
    else:
        time.sleep(milliseconds / 1000)


@dataclass(frozen=True)
class StatusCounts:
    by_status: dict[str, int]
    total_pipelines: int


def count_by_status(
    session: Session, tree: FilterNode | None, statuses: Sequence[str] | None
) -> StatusCounts:
    """Runs by status and distinct pipeline names, in one pass over the matched runs."""
    groups = (
        select(PipelineRun.name, PipelineRun.status, func.count().label("runs"))
        .where(*build_run_filter(tree, statuses))
        .group_by(PipelineRun.name, PipelineRun.status)
        .cte("groups")
    )
    query = union_all(
        select(groups.c.status, func.sum(groups.c.runs)).group_by(groups.c.status),
        select(literal(ALL_STATUSES), func.count(func.distinct(groups.c.name))),
    ).execution_options(**SCAN)
    by_status: dict[str, int] = {}
    total_pipelines = 0
    for status, count in session.execute(query).all():
        if status is ALL_STATUSES:
            total_pipelines = int(count)
        else:
            by_status[status] = int(count)
    return StatusCounts(by_status, total_pipelines)


def bucket_start(column: Any, bucket: str, dialect: str) -> ColumnElement[str]:
    """The start of the UTC bucket holding `column`, as 'YYYY-MM-DDTHH:MM:SS' text.

    The only dialect-specific piece. Constants are inlined (the bucket is one
    of two names) so that the SELECT and GROUP BY expressions render identically.
    """
    if bucket not in ("hour", "day"):
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
    """Runs by status in each bucket of the range that has any."""
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
        .execution_options(**SCAN)
    )
    counts: dict[datetime, dict[str, int]] = {}
    for start_text, status, count in session.execute(query).all():
        moment = datetime.strptime(start_text, BUCKET_TEXT_FORMAT).replace(tzinfo=UTC)
        counts.setdefault(moment, {})[status] = int(count)
    return counts
