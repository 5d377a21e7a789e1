"""Counts read from the maintained counts: one statement, one snapshot, read-only.

The rows that make up an answer are a rollup's whole buckets, the changes
not folded yet for the same whole hours, and the runs themselves in the parts
of a bucket at the range's edges (through the runs' indexes, at most an hour
or a day at each end, by the rollup's finest grain). The runs by status and the
distinct pipelines are each summed from the smallest rollup that can tell them.
Nothing here writes: it runs unchanged on a hot-standby replica.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    FromClause,
    Integer,
    Select,
    SmallInteger,
    Text,
    case,
    cast,
    func,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from ...database import STATEMENT_TAG
from ...filters.nodes import FilterNode
from ...filters.sql import LIKE_ESCAPE, build_run_filter, contains_pattern
from ...models import PipelineRun
from ...statuses import STATUS_NAMES
from ..history import HistoryRange
from ..scan import ALL_STATUSES, StatusCounts
from .planner import CountsQuery, TextCondition
from .tables import (
    BY_CREATOR,
    BY_LABEL,
    CREATOR_NAMES,
    CREATOR_TIMELINE,
    LABEL_NAMES,
    LABEL_TIMELINE,
    NAMES,
    NO_CREATOR,
    RUNS,
    STATUS_CODES,
    TIMELINE,
    Rollup,
    creators,
    deltas,
    labels,
    names,
)
from .timeline import Cover, Grain, cover

READ = {STATEMENT_TAG: "stats-counts"}
READ_SETTINGS = text(
    "SELECT set_config('work_mem', '32MB', true),"
    " set_config('plan_cache_mode', 'force_custom_plan', true)"
)
"""For the read's transaction: memory to sum a few hundred thousand counters, and a plan
for its own values (psycopg prepares a statement run five times on a connection, and a
generic plan cannot see how few names a substring matches: 40 ms became 2 s at 10M)."""
SECONDS = {Grain.HOUR: 3600, Grain.DAY: 86400}
_RUNS = PipelineRun.__table__


def bucket_number(moment: datetime, grain: Grain) -> int:
    """The bucket holding `moment`: its hour, day or month since 1970 (0 for all time)."""
    if grain is Grain.ALL:
        return 0
    if grain is Grain.MONTH:
        moment = moment.astimezone(UTC)
        return (moment.year - 1970) * 12 + moment.month - 1
    return int(moment.timestamp() // SECONDS[grain])


def bucket_start(number: int, grain: Grain) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=number * SECONDS[grain])


def _sql_number(moment: Any, grain: Grain) -> ColumnElement[int]:
    """bucket_number in SQL, for a timestamptz column."""
    return cast(func.floor(func.extract("epoch", moment) / SECONDS[grain]), Integer)


def _status_code(column: Any) -> ColumnElement[int]:
    codes = cast(list(STATUS_CODES), ARRAY(column.type))
    return func.array_position(codes, column) - 1


def _text(column: Any, condition: TextCondition) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [column.in_(sorted(v)) for v in condition.one_of]
    clauses += [
        column.ilike(contains_pattern(part), escape=LIKE_ESCAPE) for part in condition.contains
    ]
    return clauses


def history_unit(span: HistoryRange) -> Grain:
    return Grain.HOUR if span.bucket == "hour" else Grain.DAY


def named_rollup(query: CountsQuery) -> Rollup:
    """The smallest rollup per name and status with what the query constrains."""
    if query.annotation is not None:
        return BY_LABEL
    return BY_CREATOR if query.by_creator else RUNS


def status_rollup(query: CountsQuery) -> Rollup:
    """The smallest rollup that counts the query's runs by status: one without names
    unless the query constrains the name (or both an annotation and the creator)."""
    if query.name.constrained:
        return named_rollup(query)
    if query.annotation is not None:
        return BY_LABEL if query.by_creator else LABEL_TIMELINE
    return CREATOR_TIMELINE if query.by_creator else TIMELINE


def small_rollups(query: CountsQuery) -> tuple[Rollup, Rollup] | None:
    """For a filter on no name, no status and no created_at range (all runs, "me", a
    team): (a timeline for its runs by status, an all-time rollup per name without
    statuses for its distinct names). None for any other filter: per name and status
    rows tell both."""
    ranged = query.start is not None or query.end is not None
    if query.name.constrained or query.statuses is not None or ranged:
        return None
    if query.annotation is not None:
        return None if query.by_creator else (LABEL_TIMELINE, LABEL_NAMES)
    return (CREATOR_TIMELINE, CREATOR_NAMES) if query.by_creator else (TIMELINE, NAMES)


def history_rollup(query: CountsQuery, unit: Grain) -> Rollup | None:
    """The rollup counting by status, when it is kept as fine as `unit`; None when not
    (an hourly history filtered by name and creator or label scans)."""
    rollup = status_rollup(query)
    return rollup if rollup.finest <= unit else None


def _rollup_conditions(rollup: Rollup, query: CountsQuery) -> list[ColumnElement[bool]]:
    c = rollup.table.c
    clauses: list[ColumnElement[bool]] = []
    if query.name.constrained:
        clauses.append(c.name_id.in_(select(names.c.id).where(*_text(names.c.name, query.name))))
    if query.statuses is not None:
        if not rollup.by_status:
            raise ValueError(f"{rollup.table.name} has no status to filter by")
        clauses.append(c.status.in_(sorted(STATUS_CODES[s] for s in query.statuses)))
    for allowed in query.created_by.one_of:
        chosen = select(creators.c.id).where(creators.c.created_by.in_(sorted(allowed)))
        clauses.append(c.creator_id.in_(chosen))
    if query.created_by_known and rollup.by_label:
        clauses.append(c.creator_id != NO_CREATOR)
    if query.annotation is not None:
        chosen = select(labels.c.id).where(
            labels.c.key == query.annotation.key, *_text(labels.c.value, query.annotation.value)
        )
        clauses.append(c.label_id.in_(chosen))
    return clauses


def _delta_conditions(query: CountsQuery, whole: Cover) -> list[ColumnElement[bool]]:
    c = deltas.c
    clauses = _text(c.name, query.name)
    if query.statuses is not None:
        clauses.append(c.status.in_(sorted(query.statuses)))
    for allowed in query.created_by.one_of:
        clauses.append(c.created_by.in_(sorted(allowed)))
    if query.created_by_known:
        clauses.append(c.created_by.is_not(None))
    if query.annotation is not None:
        clauses.append(c.key == query.annotation.key)
        clauses += _text(c.value, query.annotation.value)
    else:
        clauses.append(c.key.is_(None))
    if whole.whole_start is not None:
        clauses.append(c.hour >= whole.whole_start)
    if whole.whole_end is not None:
        clauses.append(c.hour < whole.whole_end)
    return clauses


def _bucket_ranges(rollup: Rollup, whole: Cover) -> list[list[ColumnElement[bool]]]:
    """One range of whole buckets per grain, each read on its own: a grain and a bucket
    range are index conditions of one partition, where an OR of them is only a filter."""
    c = rollup.table.c
    ranges = []
    for piece in whole.buckets:
        bounds = [c.grain == int(piece.grain)]
        if piece.start is not None:
            bounds.append(c.bucket >= bucket_number(piece.start, piece.grain))
        if piece.end is not None:
            bounds.append(c.bucket < bucket_number(piece.end, piece.grain))
        ranges.append(bounds)
    return ranges


@dataclass(frozen=True)
class _Key:
    """What the summed rows are keyed by besides their status: nothing (the runs by
    status), a name (distinct pipelines), a bucket number (a history). `of_rollup` gives
    the rollup's column and what to read it from; `of_moment`, the key of a delta's hour
    or a run's created_at; `by_name`, keyed by a delta's or run's name."""

    of_rollup: Callable[[Rollup], tuple[ColumnElement[Any], FromClause]]
    of_moment: Callable[[Any], ColumnElement[Any]] | None = None
    by_name: bool = False

    def of_row(self, name: Any, moment: Any) -> ColumnElement[Any]:
        """The key of a delta's or a run's (name, moment)."""
        if self.by_name:
            return cast(name, Text)
        if self.of_moment is not None:
            return self.of_moment(moment)
        return literal(0)


_NO_KEY = _Key(lambda rollup: (literal(0), rollup.table))
_BY_NAME = _Key(lambda rollup: (rollup.table.c.name_id, rollup.table), by_name=True)


def _history_key(unit: Grain) -> _Key:
    def of_rollup(rollup: Rollup) -> tuple[ColumnElement[Any], FromClause]:
        r = rollup.table.c
        if unit is Grain.HOUR:
            return r.bucket, rollup.table
        hours_per_day = SECONDS[Grain.DAY] // SECONDS[Grain.HOUR]
        return case(
            (r.grain == int(Grain.HOUR), r.bucket // hours_per_day), else_=r.bucket
        ), rollup.table

    return _Key(of_rollup, lambda moment: _sql_number(moment, unit))


def _matched(
    query: CountsQuery,
    tree: FilterNode | None,
    statuses: Sequence[str] | None,
    rollup: Rollup,
    key: _Key,
    whole: Cover,
) -> list[Select[Any]]:
    """The rows to sum, (key, status code, runs): the rollup's, the deltas', the edges'.
    A rollup without statuses gives status -1 (its rows are summed per key only)."""
    parts: list[Select[Any]] = []
    if whole.whole:
        column, source = key.of_rollup(rollup)
        r = rollup.table.c
        status = r.status if rollup.by_status else literal(-1, SmallInteger)
        for bounds in _bucket_ranges(rollup, whole):
            summed = (
                select(column.label("key"), status.label("status"), func.sum(r.runs).label("runs"))
                .select_from(source)
                .where(*_rollup_conditions(rollup, query), *bounds)
                .group_by(column, status)
            )
            if key.by_name:
                # Summed per name id first; the names' text joins the few sums, not every row.
                by_id = summed.subquery()
                summed = select(
                    cast(names.c.name, Text).label("key"), by_id.c.status, by_id.c.runs
                ).join_from(by_id, names, names.c.id == by_id.c.key)
            parts.append(summed)
        d = deltas.c
        parts.append(
            select(
                key.of_row(d.name, d.hour).label("key"),
                _status_code(d.status).label("status"),
                d.runs.label("runs"),
            ).where(*_delta_conditions(query, whole))
        )
    for edge in whole.edges:
        parts.append(
            select(
                key.of_row(_RUNS.c.name, _RUNS.c.created_at).label("key"),
                _status_code(_RUNS.c.status).label("status"),
                literal(1).label("runs"),
            ).where(
                *build_run_filter(tree, statuses),
                PipelineRun.created_at >= edge.start,
                PipelineRun.created_at < edge.end,
            )
        )
    return parts


def _summed_parts(
    query: CountsQuery,
    tree: FilterNode | None,
    statuses: Sequence[str] | None,
    rollup: Rollup,
    key: _Key,
) -> list[Select[Any]]:
    return _matched(
        query, tree, statuses, rollup, key, cover(query.start, query.end, finest=rollup.finest)
    )


def count_statuses(
    session: Session, query: CountsQuery, tree: FilterNode | None, statuses: Sequence[str] | None
) -> StatusCounts:
    """Runs by status and distinct pipeline names, as the GROUP BY over the runs would say.

    One statement, one snapshot. A filter on no name, no status and no created_at
    range (all runs, "me", a team) reads each from the smallest rollup that can tell
    it: the statuses from a timeline (no names), the names from an all-time rollup
    without statuses, so that neither sums a counter per name and status (a Zipf-head
    creator or team has tens of thousands). Any other filter reads per name and status
    rows, which tell both."""
    small = small_rollups(query)
    if small is None:
        statement = _from_named_rows(query, tree, statuses, named_rollup(query))
    else:
        statement = _from_two_rollups(query, tree, statuses, *small)
    if statement is None:  # an empty created_at range
        return StatusCounts({}, 0)
    session.execute(READ_SETTINGS)
    by_status: dict[str, int] = {}
    total_pipelines = 0
    for status, count in session.execute(statement.execution_options(**READ)).all():
        if status is ALL_STATUSES:
            total_pipelines = int(count)
        else:
            by_status[STATUS_NAMES[status]] = int(count)
    return StatusCounts(by_status, total_pipelines)


def _from_named_rows(
    query: CountsQuery, tree: FilterNode | None, statuses: Sequence[str] | None, rollup: Rollup
) -> CompoundSelect | None:
    """(status, runs) rows and (ALL_STATUSES, distinct names) from per name and status rows."""
    parts = _summed_parts(query, tree, statuses, rollup, _BY_NAME)
    if not parts:
        return None
    matched = union_all(*parts).cte("matched")
    groups = (
        select(matched.c.key, matched.c.status, func.sum(matched.c.runs).label("runs"))
        .group_by(matched.c.key, matched.c.status)
        .having(func.sum(matched.c.runs) != 0)
        .cte("groups")
    )
    distinct_names = select(groups.c.key).group_by(groups.c.key).subquery()
    return union_all(
        select(groups.c.status, func.sum(groups.c.runs)).group_by(groups.c.status),
        select(literal(ALL_STATUSES, Integer), func.count()).select_from(distinct_names),
    )


def _from_two_rollups(
    query: CountsQuery,
    tree: FilterNode | None,
    statuses: Sequence[str] | None,
    by_status_from: Rollup,
    names_from: Rollup,
) -> CompoundSelect | None:
    """The same rows, the statuses summed from `by_status_from` (no names) and the
    distinct names from `names_from` (no statuses)."""
    status_parts = _summed_parts(query, tree, statuses, by_status_from, _NO_KEY)
    name_parts = _summed_parts(query, tree, statuses, names_from, _BY_NAME)
    if not status_parts or not name_parts:
        return None
    by_status_rows = union_all(*status_parts).cte("by_status_rows")
    name_rows = union_all(*name_parts).cte("name_rows")
    distinct_names = (
        select(name_rows.c.key)
        .group_by(name_rows.c.key)
        .having(func.sum(name_rows.c.runs) != 0)
        .subquery()
    )
    return union_all(
        select(by_status_rows.c.status, func.sum(by_status_rows.c.runs))
        .group_by(by_status_rows.c.status)
        .having(func.sum(by_status_rows.c.runs) != 0),
        select(literal(ALL_STATUSES, Integer), func.count()).select_from(distinct_names),
    )


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
    unit = history_unit(span)
    rollup = history_rollup(query, unit)
    if rollup is None:
        raise ValueError("no rollup answers this history; plan a scan instead")
    whole = cover(start, end, finest=rollup.finest, coarsest=unit)
    parts = _matched(query, tree, statuses, rollup, _history_key(unit), whole)
    if not parts:
        return {}
    matched = union_all(*parts).cte("matched")
    statement = (
        select(matched.c.key, matched.c.status, func.sum(matched.c.runs))
        .group_by(matched.c.key, matched.c.status)
        .having(func.sum(matched.c.runs) != 0)
        .execution_options(**READ)
    )
    session.execute(READ_SETTINGS)
    counts: dict[datetime, dict[str, int]] = {}
    for number, status, runs in session.execute(statement).all():
        counts.setdefault(bucket_start(int(number), unit), {})[STATUS_NAMES[status]] = int(runs)
    return counts
