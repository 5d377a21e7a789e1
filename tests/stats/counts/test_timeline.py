"""A created_at range as whole buckets plus edges: every instant covered exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from runstats_app.stats.counts.timeline import ALL_TIME, Buckets, Cover, Edge, Grain, cover

STEP = {Grain.HOUR: "hour", Grain.DAY: "day", Grain.MONTH: "month"}
START = datetime(2026, 1, 1, tzinfo=UTC)
moments = st.integers(min_value=0, max_value=400 * 24 * 60).map(
    lambda minutes: START + timedelta(minutes=minutes, seconds=minutes % 7)
)


def _next(bucket: datetime, grain: Grain) -> datetime:
    if grain is Grain.HOUR:
        return bucket + timedelta(hours=1)
    if grain is Grain.DAY:
        return bucket + timedelta(days=1)
    return (bucket + timedelta(days=32)).replace(day=1)


def _aligned(moment: datetime, grain: Grain) -> bool:
    if grain is Grain.HOUR:
        return moment == moment.replace(minute=0, second=0, microsecond=0)
    if grain is Grain.DAY:
        return moment == moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return _aligned(moment, Grain.DAY) and moment.day == 1


def _covered_by(result: Cover, moment: datetime) -> int:
    """How many times `moment` is counted: the pieces that hold it, by their signs."""
    held = sum(edge.sign for edge in result.edges if edge.start <= moment < edge.end)
    for piece in result.buckets:
        if piece.grain is Grain.ALL or (
            (piece.start is None or piece.start <= moment)
            and (piece.end is None or moment < piece.end)
        ):
            held += piece.sign
    return held


@settings(max_examples=300, deadline=None)
@given(
    start=moments,
    length=st.integers(min_value=1, max_value=100 * 24 * 60),
    finest=st.sampled_from([Grain.HOUR, Grain.DAY]),
)
def test_a_bounded_range_is_covered_once_by_whole_buckets_and_edges(start, length, finest):
    end = start + timedelta(minutes=length, seconds=length % 11)
    result = cover(start, end, finest=finest)
    for piece in result.buckets:
        assert piece.start is not None and piece.end is not None
        assert piece.grain >= finest
        assert _aligned(piece.start, piece.grain) and _aligned(piece.end, piece.grain)
    for edge in result.edges:
        assert edge.end - edge.start <= timedelta(hours=1 if finest is Grain.HOUR else 24) / 2
    probes = [start, end, start + (end - start) / 2, *_bounds_of(result)]
    for probe in [*probes, *(moment - timedelta(microseconds=1) for moment in probes)]:
        expected = 1 if start <= probe < end else 0
        assert _covered_by(result, probe) == expected, (probe, result)
    for piece in result.buckets:
        if piece.sign < 0:
            assert _taken_from_a_coarser_bucket(result, piece)


def _bounds_of(result: Cover) -> list[datetime]:
    """Every bound of a piece or an edge: the count is constant between two of them, so
    probing at each and just before each checks every instant."""
    pieces = [*result.buckets, *result.edges]
    return [b for piece in pieces for b in (piece.start, piece.end) if b is not None]


def _taken_from_a_coarser_bucket(result: Cover, less: Buckets) -> bool:
    assert less.start is not None and less.end is not None
    return any(
        piece.sign > 0
        and piece.grain > less.grain
        and piece.start is not None
        and piece.end is not None
        and piece.start <= less.start
        and less.end <= piece.end
        for piece in result.buckets
    )


def test_most_of_a_month_is_the_month_less_its_other_days():
    start = datetime(2026, 11, 3, 2, 22, tzinfo=UTC)
    result = cover(start, None, finest=Grain.DAY)
    november, december = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    assert result.buckets == (
        Buckets(Grain.MONTH, november, december),
        Buckets(Grain.DAY, november, datetime(2026, 11, 3, tzinfo=UTC), sign=-1),
        Buckets(Grain.MONTH, december, None),
    )
    assert result.edges == (Edge(datetime(2026, 11, 3, tzinfo=UTC), start, sign=-1),)


def test_a_few_days_of_a_month_are_read_as_days():
    start = datetime(2026, 11, 25, 2, 22, tzinfo=UTC)
    result = cover(start, None, finest=Grain.DAY)
    assert result.buckets[0] == Buckets(
        Grain.DAY, datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    )
    assert all(piece.sign == 1 for piece in result.buckets)


def test_no_bounds_is_the_all_time_bucket():
    assert cover(None, None) == Cover((Buckets(Grain.ALL, None, None),), (), whole=True)
    assert ALL_TIME.tzinfo is UTC


def test_an_open_end_reaches_every_later_month():
    start = datetime(2026, 3, 10, 7, 30, tzinfo=UTC)
    result = cover(start, None)
    assert result.edges == (Edge(start, datetime(2026, 3, 10, 8, tzinfo=UTC)),)
    assert result.buckets[-1] == Buckets(Grain.MONTH, datetime(2026, 4, 1, tzinfo=UTC), None)
    assert (result.whole_start, result.whole_end) == (datetime(2026, 3, 10, 8, tzinfo=UTC), None)


def test_an_open_start_reaches_every_earlier_month():
    end = datetime(2026, 3, 10, 7, 30, tzinfo=UTC)
    result = cover(None, end)
    assert result.buckets[0] == Buckets(Grain.MONTH, None, datetime(2026, 3, 1, tzinfo=UTC))
    assert result.edges == (Edge(datetime(2026, 3, 10, 7, tzinfo=UTC), end),)


def test_a_range_inside_one_hour_is_a_single_edge():
    start = datetime(2026, 3, 10, 7, 10, tzinfo=UTC)
    end = start + timedelta(minutes=20)
    assert cover(start, end) == Cover((), (Edge(start, end),), whole=False)


def test_history_never_uses_a_bucket_coarser_than_its_own():
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    assert {piece.grain for piece in cover(start, end, coarsest=Grain.DAY).buckets} == {Grain.DAY}
    hourly = cover(start, end, coarsest=Grain.HOUR).buckets
    assert {piece.grain for piece in hourly} == {Grain.HOUR}


def test_a_rollup_kept_from_days_up_reads_the_shorter_side_of_partial_days():
    start = datetime(2026, 3, 10, 7, 30, tzinfo=UTC)
    end = datetime(2026, 3, 20, 1, 0, tzinfo=UTC)
    result = cover(start, end, finest=Grain.DAY)
    assert result.edges == (
        Edge(datetime(2026, 3, 10, tzinfo=UTC), start, sign=-1),
        Edge(datetime(2026, 3, 20, tzinfo=UTC), end),
    )
    assert result.buckets == (
        Buckets(Grain.DAY, datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 20, tzinfo=UTC)),
    )


def test_most_of_one_hour_is_the_hour_less_its_outside():
    start = datetime(2026, 3, 10, 7, 5, tzinfo=UTC)
    end = datetime(2026, 3, 10, 7, 50, tzinfo=UTC)
    hour = Buckets(Grain.HOUR, datetime(2026, 3, 10, 7, tzinfo=UTC), start + timedelta(minutes=55))
    assert cover(start, end) == Cover(
        (hour,),
        (Edge(hour.start, start, sign=-1), Edge(end, hour.end, sign=-1)),
        True,
        hour.start,
        hour.end,
    )


def test_an_empty_range_covers_nothing():
    moment = datetime(2026, 3, 10, tzinfo=UTC)
    assert cover(moment, moment) == Cover((), (), whole=False)
