"""A created_at range as whole buckets of the counts' grains, plus the bits at its edges.

Counts are kept per UTC hour (some only from days up), day, month and for all
time. A range [start, end) is covered by few whole buckets (months inside,
then days, then hours; a partial month or day may be the whole one less the
buckets outside the range, when those are fewer) and, where a bound is not on
the finest bucket, the part of one bucket at each edge, read from the runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum


class Grain(IntEnum):
    HOUR = 0
    DAY = 1
    MONTH = 2
    ALL = 3


ALL_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"""The one bucket of the ALL grain."""


@dataclass(frozen=True)
class Buckets:
    """Whole buckets of one grain: start <= bucket < end (None: unbounded), counted
    with `sign` (-1: taken away from a coarser bucket that holds them)."""

    grain: Grain
    start: datetime | None
    end: datetime | None
    sign: int = 1


@dataclass(frozen=True)
class Edge:
    """A part of a bucket, read from the runs: start <= created_at < end, counted with
    `sign` (-1: the part of a whole bucket outside the range)."""

    start: datetime
    end: datetime
    sign: int = 1


@dataclass(frozen=True)
class Cover:
    buckets: tuple[Buckets, ...]
    edges: tuple[Edge, ...]
    whole: bool
    """Whether any whole bucket is covered: whole_start <= t < whole_end (None: unbounded)."""
    whole_start: datetime | None = None
    whole_end: datetime | None = None


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floored = floor_hour(moment)
    return floored if floored == moment else floored + timedelta(hours=1)


def floor_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_day(moment: datetime) -> datetime:
    floored = floor_day(moment)
    return floored if floored == moment else floored + timedelta(days=1)


def floor_month(moment: datetime) -> datetime:
    return floor_day(moment).replace(day=1)


def ceil_month(moment: datetime) -> datetime:
    floored = floor_month(moment)
    if floored == moment:
        return floored
    return (floored + timedelta(days=32)).replace(day=1)


_FLOOR = {Grain.HOUR: floor_hour, Grain.DAY: floor_day, Grain.MONTH: floor_month}
_CEIL = {Grain.HOUR: ceil_hour, Grain.DAY: ceil_day, Grain.MONTH: ceil_month}


def cover(
    start: datetime | None,
    end: datetime | None,
    *,
    finest: Grain = Grain.HOUR,
    coarsest: Grain = Grain.ALL,
) -> Cover:
    """The buckets (of `finest` to `coarsest`) and edges that make up [start, end).

    Where the range cuts a `finest` bucket, the runs of the shorter side are read:
    the part inside the range (an edge), or the whole bucket less the part outside
    (a negative edge). So an edge is at most half a bucket: "since 02:54" reads
    the day less 2 h 54 min of runs, not 21 hours of them.
    """
    if start is None and end is None and coarsest is Grain.ALL:
        return Cover((Buckets(Grain.ALL, None, None),), (), whole=True)
    if start is not None and end is not None and start >= end:
        return Cover((), (), whole=False)
    floor, ceil = _FLOOR[finest], _CEIL[finest]
    if start is not None and end is not None and floor(start) == floor(end):
        return _inside_one_bucket(start, end, Buckets(finest, floor(start), ceil(end)))
    whole_start, first = (None, None) if start is None else _cut(start, floor, ceil, left=True)
    whole_end, last = (None, None) if end is None else _cut(end, floor, ceil, left=False)
    edges = tuple(edge for edge in (first, last) if edge is not None)
    if whole_start is not None and whole_start == whole_end:
        return Cover((), edges, whole=False)
    buckets = _whole(finest, whole_start, whole_end, min(coarsest, Grain.MONTH))
    return Cover(tuple(buckets), edges, True, whole_start, whole_end)


def _inside_one_bucket(start: datetime, end: datetime, bucket: Buckets) -> Cover:
    """[start, end) inside one finest bucket: one edge, or the bucket less the edges
    outside the range when those are shorter."""
    opens, closes = bucket.start, bucket.end
    assert opens is not None and closes is not None
    if (start - opens) + (closes - end) >= end - start:
        return Cover((), (Edge(start, end),), whole=False)
    outside = [Edge(opens, start, -1), Edge(end, closes, -1)]
    edges = tuple(edge for edge in outside if edge.start < edge.end)
    return Cover((bucket,), edges, True, opens, closes)


def _cut(
    moment: datetime,
    floor: Callable[[datetime], datetime],
    ceil: Callable[[datetime], datetime],
    *,
    left: bool,
) -> tuple[datetime, Edge | None]:
    """Where the whole buckets start (`left`) or end at a range's bound `moment`, and the
    edge between: the shorter of the part inside the range and the part outside."""
    opens, closes = floor(moment), ceil(moment)
    if opens == moment:
        return moment, None
    before, after = moment - opens, closes - moment
    if (after <= before) if left else (before <= after):
        return (closes, Edge(moment, closes)) if left else (opens, Edge(opens, moment))
    return (opens, Edge(opens, moment, -1)) if left else (closes, Edge(moment, closes, -1))


def _whole(
    grain: Grain, start: datetime | None, end: datetime | None, coarsest: Grain
) -> list[Buckets]:
    """[start, end), already on `grain` boundaries, as buckets up to `coarsest`."""
    if grain >= coarsest:
        return [Buckets(grain, start, end)]
    coarser = Grain(grain + 1)
    inner_start = None if start is None else _CEIL[coarser](start)
    inner_end = None if end is None else _FLOOR[coarser](end)
    if inner_start is not None and inner_end is not None and inner_start >= inner_end:
        return [Buckets(grain, start, end)]
    pieces = []
    if start is not None and inner_start is not None and start < inner_start:
        pieces.extend(_partial(grain, coarser, _FLOOR[coarser](start), start, inner_start))
    pieces.extend(_whole(coarser, inner_start, inner_end, coarsest))
    if end is not None and inner_end is not None and inner_end < end:
        pieces.extend(_partial(grain, coarser, inner_end, end, _CEIL[coarser](end), left=False))
    return pieces


def _partial(
    grain: Grain,
    coarser: Grain,
    opens: datetime,
    cut: datetime,
    closes: datetime,
    *,
    left: bool = True,
) -> list[Buckets]:
    """The part of the `coarser` bucket [opens, closes) on one side of `cut`: [cut,
    closes) when `left` (a range's start is cut), else [opens, cut) (its end). As
    buckets of `grain`, or as the coarser bucket less the buckets on the other side
    when those are fewer: the last 30 days on 2 December read November less two
    days, not 28 days. (`cover` never asks this of the all-time bucket.)"""
    kept, other = ((cut, closes), (opens, cut)) if left else ((opens, cut), (cut, closes))
    if other[1] - other[0] >= kept[1] - kept[0]:
        return [Buckets(grain, *kept)]
    return [Buckets(coarser, opens, closes), Buckets(grain, *other, sign=-1)]
