"""Counts read from the maintained counts: in the caller's snapshot, read-only.

The rows that make up an answer are a rollup's whole buckets, the changes
not folded yet for the same whole hours, and the runs themselves in the parts
of a bucket at the range's edges (through the runs' indexes, at most half an
hour or half a day at each end, by the rollup's finest grain; timeline.py). The
runs by status and the distinct pipelines are each summed from the smallest rollup
that can tell them (choice.py), after the dictionary ids the filter names are
looked up (dictionary.py). Nothing here writes: it runs unchanged on a hot-standby
replica.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    SmallInteger,
    Text,
    case,
    cast,
    func,
    literal,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from ...database import STATEMENT_TAG
from ...filters.nodes import FilterNode
from ...filters.sql import build_run_filter
from ...models import PipelineRun
from ...statuses import STATUS_NAMES
from ..history import HistoryRange
from ..scan import ALL_STATUSES, StatusCounts
from .choice import history_rollup, history_unit, named_rollup, small_rollups
from .dictionary import DictionaryIds, look_up, one_of, text_conditions
from .planner import CountsQuery, without_created_at
from .state import CountsChanged, CountsState, state_columns, state_of
from .tables import NO_CREATOR, STATUS_CODES, Rollup, deltas, names
from .timeline import Buckets, Cover, Grain, cover

READ = {STATEMENT_TAG: "stats-counts"}
READ_SETTINGS = (
    func.set_config("work_mem", "32MB", True),
    func.set_config("plan_cache_mode", "force_custom_plan", True),
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


def _rollup_conditions(
    rollup: Rollup, query: CountsQuery, ids: DictionaryIds
) -> list[ColumnElement[bool]]:
    c = rollup.table.c
    clauses: list[ColumnElement[bool]] = []
    if ids.names is not None:
        clauses.append(one_of(c.name_id, ids.names))
    if query.statuses is not None:
        if not rollup.by_status:
            raise ValueError(f"{rollup.table.name} has no status to filter by")
        clauses.append(c.status.in_(sorted(STATUS_CODES[s] for s in query.statuses)))
    for allowed in ids.creators:
        clauses.append(one_of(c.creator_id, allowed))
    if query.created_by_known and rollup.by_label:
        clauses.append(c.creator_id != NO_CREATOR)
    if ids.labels is not None:
        clauses.append(one_of(c.label_id, ids.labels))
    return clauses


def _delta_conditions(query: CountsQuery, whole: Cover) -> list[ColumnElement[bool]]:
    c = deltas.c
    clauses = text_conditions(c.name, query.name)
    if query.statuses is not None:
        clauses.append(c.status.in_(sorted(query.statuses)))
    for allowed in query.created_by.one_of:
        clauses.append(c.created_by.in_(sorted(allowed)))
    if query.created_by_known:
        clauses.append(c.created_by.is_not(None))
    if query.annotation is not None:
        clauses.append(c.key == query.annotation.key)
        clauses += text_conditions(c.value, query.annotation.value)
    else:
        clauses.append(c.key.is_(None))
    if whole.whole_start is not None:
        clauses.append(c.hour >= whole.whole_start)
    if whole.whole_end is not None:
        clauses.append(c.hour < whole.whole_end)
    return clauses


_Bounds = list[ColumnElement[bool]]


def _bucket_ranges(rollup: Rollup, whole: Cover) -> list[tuple[Buckets, _Bounds]]:
    """One range of whole buckets per piece, each read on its own: a grain and a bucket
    range are index conditions of one partition, where an OR of them is only a filter."""
    c = rollup.table.c
    ranges = []
    for piece in whole.buckets:
        bounds = [c.grain == int(piece.grain)]
        if piece.start is not None:
            bounds.append(c.bucket >= bucket_number(piece.start, piece.grain))
        if piece.end is not None:
            bounds.append(c.bucket < bucket_number(piece.end, piece.grain))
        ranges.append((piece, bounds))
    return ranges


_NO_NAME = literal(None, Text)


@dataclass(frozen=True)
class _Key:
    """What the summed rows are keyed by besides their status: nothing (the runs by
    status), a name (distinct pipelines), a bucket number (a history). Every row
    carries (key, new_name, status, runs).

    Named rows are keyed by the name's dictionary id, as the rollups are, so that
    summing them groups integers rather than text; a delta's or a run's name that
    the dictionary does not hold yet (a pipeline whose first runs are not folded)
    is keyed by its text in `new_name` instead (key NULL). `of_rollup` gives the
    rollup's key column; `of_moment`, the key of a delta's hour or a run's created_at."""

    of_rollup: Callable[[Rollup], ColumnElement[Any]]
    of_moment: Callable[[Any], ColumnElement[Any]] | None = None
    by_name: bool = False

    def rows(self, source: Any, name: Any, moment: Any) -> tuple[Any, list[ColumnElement[Any]]]:
        """What to read a delta's or a run's key from, and its (key, new_name) columns."""
        if self.by_name:
            known = source.outerjoin(names, names.c.name == name)
            new_name = case((names.c.id.is_(None), cast(name, Text)), else_=_NO_NAME)
            return known, [names.c.id.label("key"), new_name.label("new_name")]
        key = literal(0) if self.of_moment is None else self.of_moment(moment)
        return source, [key.label("key"), _NO_NAME.label("new_name")]


_NO_KEY = _Key(lambda rollup: literal(0))
_BY_NAME = _Key(lambda rollup: rollup.table.c.name_id, by_name=True)


def _history_key(unit: Grain) -> _Key:
    def of_rollup(rollup: Rollup) -> ColumnElement[Any]:
        r = rollup.table.c
        if unit is Grain.HOUR:
            return r.bucket
        hours_per_day = SECONDS[Grain.DAY] // SECONDS[Grain.HOUR]
        return case((r.grain == int(Grain.HOUR), r.bucket // hours_per_day), else_=r.bucket)

    return _Key(of_rollup, lambda moment: _sql_number(moment, unit))


@dataclass(frozen=True)
class _Read:
    """One read's question: the query, its filter for the runs at the edges, its ids."""

    query: CountsQuery
    tree: FilterNode | None
    statuses: Sequence[str] | None
    ids: DictionaryIds


def _matched(read: _Read, rollup: Rollup, key: _Key, whole: Cover) -> list[Select[Any]]:
    """The rows to sum, (key, new_name, status code, runs): the rollup's, the deltas', the
    edges'. A rollup without statuses gives status -1 (its rows are summed per key only);
    buckets taken away from a coarser one and edges outside the range (timeline.py) are
    summed negated."""
    parts: list[Select[Any]] = []
    if whole.whole:
        column = key.of_rollup(rollup)
        r = rollup.table.c
        counted = r.status if rollup.by_status else literal(-1, SmallInteger)
        for piece, bounds in _bucket_ranges(rollup, whole):
            parts.append(
                select(
                    column.label("key"),
                    _NO_NAME.label("new_name"),
                    counted.label("status"),
                    (r.runs if piece.sign > 0 else -r.runs).label("runs"),
                ).where(*_rollup_conditions(rollup, read.query, read.ids), *bounds)
            )
        d = deltas.c
        source, keyed = key.rows(deltas, d.name, d.hour)
        parts.append(
            select(*keyed, _status_code(d.status).label("status"), d.runs.label("runs"))
            .select_from(source)
            .where(*_delta_conditions(read.query, whole))
        )
    if whole.edges:
        source, keyed = key.rows(_RUNS, _RUNS.c.name, _RUNS.c.created_at)
        run_status = _status_code(_RUNS.c.status).label("status")
        chosen = build_run_filter(without_created_at(read.tree), read.statuses)
        for edge in whole.edges:
            parts.append(
                select(*keyed, run_status, literal(edge.sign).label("runs"))
                .select_from(source)
                .where(
                    *chosen,
                    PipelineRun.created_at >= edge.start,
                    PipelineRun.created_at < edge.end,
                )
            )
    return parts


def _summed_parts(read: _Read, rollup: Rollup, key: _Key) -> list[Select[Any]]:
    query = read.query
    return _matched(read, rollup, key, cover(query.start, query.end, finest=rollup.finest))


def _prepare(session: Session, query: CountsQuery, planned: CountsState | None) -> DictionaryIds:
    """The read's settings and the query's dictionary ids, in one round trip that also
    checks that the counts' state is still the `planned` one (CountsChanged if not)."""
    checked = state_columns() if planned is not None else []
    ids, values = look_up(session, query, [*READ_SETTINGS, *checked])
    if planned is not None and state_of(values[len(READ_SETTINGS) :]) != planned:
        raise CountsChanged
    return ids


def count_statuses(
    session: Session,
    query: CountsQuery,
    tree: FilterNode | None,
    statuses: Sequence[str] | None,
    planned: CountsState | None = None,
) -> StatusCounts:
    """Runs by status and distinct pipeline names, as the GROUP BY over the runs would say.

    Two statements in the caller's snapshot: the dictionary ids (and, given the state
    the query was `planned` with, a check that it still holds), then the counts. A
    filter on no name, no status and no created_at range (all runs, "me", a team)
    reads each from the smallest rollup that can tell it: the statuses from a
    timeline (no names), the names from an all-time rollup without statuses, so that
    neither sums a counter per name and status (a Zipf-head creator or team has tens
    of thousands). Any other filter reads per name and status rows, which tell both."""
    read = _Read(query, tree, statuses, _prepare(session, query, planned))
    small = small_rollups(query)
    if small is None:
        statement = _from_named_rows(read, named_rollup(query))
    else:
        statement = _from_two_rollups(read, *small)
    if statement is None:  # an empty created_at range
        return StatusCounts({}, 0)
    by_status: dict[str, int] = {}
    total_pipelines = 0
    for status, count in session.execute(statement.execution_options(**READ)).all():
        if status is ALL_STATUSES:
            total_pipelines = int(count)
        else:
            by_status[STATUS_NAMES[status]] = int(count)
    return StatusCounts(by_status, total_pipelines)


def _by_status(rows: Any) -> Select[Any, Any]:
    """(status, runs) of each status with any."""
    return (
        select(rows.c.status, func.sum(rows.c.runs))
        .group_by(rows.c.status)
        .having(func.sum(rows.c.runs) != 0)
    )


def _distinct_names(rows: Any) -> Select[int, int]:
    """(ALL_STATUSES, how many names have any run): counts are never negative, so a
    name's runs over all statuses are 0 exactly when it has none in each."""
    named = (
        select(rows.c.key)
        .group_by(rows.c.key, rows.c.new_name)
        .having(func.sum(rows.c.runs) != 0)
        .subquery()
    )
    return select(literal(ALL_STATUSES, Integer), func.count()).select_from(named)


def _from_named_rows(read: _Read, rollup: Rollup) -> CompoundSelect | None:
    """(status, runs) rows and (ALL_STATUSES, distinct names) from per name and status
    rows, summed per status and per name in one pass (grouping sets: a quarter faster
    than summing the rows twice, "me" + 7 days at 10M runs)."""
    parts = _summed_parts(read, rollup, _BY_NAME)
    if not parts:
        return None
    rows = union_all(*parts).subquery()
    per_name = func.grouping(rows.c.status)
    sums = (
        select(rows.c.status, per_name.label("per_name"), func.sum(rows.c.runs).label("runs"))
        .group_by(func.grouping_sets(tuple_(rows.c.status), tuple_(rows.c.key, rows.c.new_name)))
        .cte("sums")
    )
    return union_all(
        select(sums.c.status, sums.c.runs).where(sums.c.per_name == 0, sums.c.runs != 0),
        select(literal(ALL_STATUSES, Integer), func.count()).where(
            sums.c.per_name == 1, sums.c.runs != 0
        ),
    )


def _from_two_rollups(
    read: _Read, by_status_from: Rollup, names_from: Rollup
) -> CompoundSelect | None:
    """The same rows, the statuses summed from `by_status_from` (no names) and the
    distinct names from `names_from` (no statuses)."""
    status_parts = _summed_parts(read, by_status_from, _NO_KEY)
    name_parts = _summed_parts(read, names_from, _BY_NAME)
    if not status_parts or not name_parts:
        return None
    by_status_rows = union_all(*status_parts).subquery()
    name_rows = union_all(*name_parts).subquery()
    return union_all(_by_status(by_status_rows), _distinct_names(name_rows))


def count_buckets(
    session: Session,
    query: CountsQuery,
    tree: FilterNode | None,
    statuses: Sequence[str] | None,
    span: HistoryRange,
    planned: CountsState | None = None,
) -> dict[datetime, dict[str, int]]:
    """Runs by status in each history bucket that has any, as the scan would say (the
    snapshot's state checked as for count_statuses)."""
    start = span.start if query.start is None else max(span.start, query.start)
    end = span.end if query.end is None else min(span.end, query.end)
    unit = history_unit(span)
    rollup = history_rollup(query, unit)
    if rollup is None:
        raise ValueError("no rollup answers this history; plan a scan instead")
    whole = cover(start, end, finest=rollup.finest, coarsest=unit)
    read = _Read(query, tree, statuses, _prepare(session, query, planned))
    parts = _matched(read, rollup, _history_key(unit), whole)
    if not parts:
        return {}
    matched = union_all(*parts).subquery()
    statement = (
        select(matched.c.key, matched.c.status, func.sum(matched.c.runs))
        .group_by(matched.c.key, matched.c.status)
        .having(func.sum(matched.c.runs) != 0)
        .execution_options(**READ)
    )
    counts: dict[datetime, dict[str, int]] = {}
    for number, status, runs in session.execute(statement).all():
        counts.setdefault(bucket_start(int(number), unit), {})[STATUS_NAMES[status]] = int(runs)
    return counts
