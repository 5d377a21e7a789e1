"""Counts read from the maintained counts: one statement, one snapshot, read-only.

The rows that make up an answer are the rollup's whole buckets, the changes
not folded yet for the same whole hours, and the runs themselves in the parts
of an hour at the range's edges (through the runs' indexes, at most an hour at
each end). They are summed per name and status, so the answer also knows how
many distinct pipelines it counted. Nothing here writes: it runs unchanged on
a hot-standby replica.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from ...database import STATEMENT_TAG
from ...filters.nodes import FilterNode
from ...filters.sql import LIKE_ESCAPE, build_run_filter, contains_pattern
from ...models import PipelineRun
from ..history import HistoryRange
from ..scan import ALL_STATUSES, BUCKET_TEXT_FORMAT, StatusCounts, bucket_start
from .planner import CountsQuery, TextCondition
from .tables import deltas, rollup_for
from .timeline import ALL_TIME, Cover, Grain, cover

READ = {STATEMENT_TAG: "stats-counts"}
BucketOf = Callable[[Any], ColumnElement[str]] | None


def _text(column: Any, condition: TextCondition) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [column.in_(sorted(v)) for v in condition.one_of]
    clauses += [
        column.ilike(contains_pattern(part), escape=LIKE_ESCAPE) for part in condition.contains
    ]
    return clauses


def _columns(table: Table, query: CountsQuery, is_deltas: bool) -> list[ColumnElement[bool]]:
    c = table.c
    clauses = _text(c.name, query.name)
    if query.statuses is not None:
        clauses.append(c.status.in_(sorted(query.statuses)))
    if query.by_creator:
        clauses += _text(c.created_by, query.created_by)
        clauses.append(c.created_by.is_not(None))
    if query.annotation is not None:
        clauses.append(c.key == query.annotation.key)
        clauses += _text(c.value, query.annotation.value)
    elif is_deltas:
        clauses.append(c.key.is_(None))
    return clauses


def _buckets(table: Table, whole: Cover) -> ColumnElement[bool]:
    pieces = []
    for piece in whole.buckets:
        bounds = [table.c.grain == int(piece.grain)]
        if piece.grain is Grain.ALL:
            bounds.append(table.c.bucket == ALL_TIME)
        if piece.start is not None:
            bounds.append(table.c.bucket >= piece.start)
        if piece.end is not None:
            bounds.append(table.c.bucket < piece.end)
        pieces.append(and_(*bounds))
    return or_(*pieces)


def _hours(whole: Cover) -> list[ColumnElement[bool]]:
    clauses = []
    if whole.hours_start is not None:
        clauses.append(deltas.c.hour >= whole.hours_start)
    if whole.hours_end is not None:
        clauses.append(deltas.c.hour < whole.hours_end)
    return clauses


def _matched(
    query: CountsQuery,
    tree: FilterNode | None,
    statuses: Sequence[str] | None,
    whole: Cover,
    bucket_of: BucketOf,
) -> list[Select[Any]]:
    """The rows to sum: (name, status, runs[, bucket]) from the rollup, the deltas, the edges."""
    rollup = rollup_for(query.by_creator, query.annotation is not None).table

    def row(table: Any, runs: Any, moment: Any) -> list[Any]:
        picked = [table.c.name, table.c.status, runs]
        return picked if bucket_of is None else [*picked, bucket_of(moment)]

    parts: list[Select[Any]] = []
    if whole.whole_hours:
        parts.append(
            select(*row(rollup, rollup.c.runs, rollup.c.bucket)).where(
                *_columns(rollup, query, False), _buckets(rollup, whole)
            )
        )
        parts.append(
            select(*row(deltas, deltas.c.runs, deltas.c.hour)).where(
                *_columns(deltas, query, True), *_hours(whole)
            )
        )
    runs = PipelineRun.__table__
    for edge in whole.edges:
        parts.append(
            select(*row(runs, literal(1), runs.c.created_at)).where(
                *build_run_filter(tree, statuses),
                PipelineRun.created_at >= edge.start,
                PipelineRun.created_at < edge.end,
            )
        )
    return parts


def count_statuses(
    session: Session, query: CountsQuery, tree: FilterNode | None, statuses: Sequence[str] | None
) -> StatusCounts:
    """Runs by status and distinct pipeline names, as the GROUP BY over the runs would say."""
    parts = _matched(query, tree, statuses, cover(query.start, query.end), None)
    if not parts:
        return StatusCounts({}, 0)
    matched = union_all(*parts).cte("matched")
    groups = (
        select(matched.c.name, matched.c.status, func.sum(matched.c.runs).label("runs"))
        .group_by(matched.c.name, matched.c.status)
        .having(func.sum(matched.c.runs) != 0)
        .cte("groups")
    )
    statement = union_all(
        select(groups.c.status, func.sum(groups.c.runs)).group_by(groups.c.status),
        select(literal(ALL_STATUSES), func.count(func.distinct(groups.c.name))),
    ).execution_options(**READ)
    by_status: dict[str, int] = {}
    total_pipelines = 0
    for status, count in session.execute(statement).all():
        if status is ALL_STATUSES:
            total_pipelines = int(count)
        else:
            by_status[status] = int(count)
    return StatusCounts(by_status, total_pipelines)


def count_buckets(
    session: Session,
    query: CountsQuery,
    tree: FilterNode | None,
    statuses: Sequence[str] | None,
    span: HistoryRange,
) -> dict[datetime, dict[str, int]]:
    """Runs by status in each history bucket that has any, as the scan would say."""
    start = span.start if query.start is None else max(span.start, query.start)
    end = span.end if query.end is None else min(span.end, query.end)
    coarsest = Grain.HOUR if span.bucket == "hour" else Grain.DAY
    parts = _matched(
        query,
        tree,
        statuses,
        cover(start, end, coarsest),
        lambda moment: bucket_start(moment, span.bucket, "postgresql").label("history_bucket"),
    )
    if not parts:
        return {}
    matched = union_all(*parts).cte("matched")
    statement = (
        select(matched.c.history_bucket, matched.c.status, func.sum(matched.c.runs))
        .group_by(matched.c.history_bucket, matched.c.status)
        .having(func.sum(matched.c.runs) != 0)
        .execution_options(**READ)
    )
    counts: dict[datetime, dict[str, int]] = {}
    for start_text, status, runs in session.execute(statement).all():
        moment = datetime.strptime(start_text, BUCKET_TEXT_FORMAT).replace(tzinfo=UTC)
        counts.setdefault(moment, {})[status] = int(runs)
    return counts
