"""Maintained counts against the GROUP BY over the runs, whoever wrote (PostgreSQL).

Hypothesis plays random writes — through the API (create, transitions,
annotations) and by raw SQL behind its back (updates of any counted column,
deletes of runs and annotations, inserts) — folding now and then, and then
compares, for random filters the counts answer, what they say with what
scanning the runs says, in the same transaction. Each example is rolled back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, text

from runstats_app.extensions import db
from runstats_app.filters import nodes
from runstats_app.filters.nodes import FilterNode
from runstats_app.stats.counts.choice import history_rollup, history_unit
from runstats_app.stats.counts.fold import fold_once
from runstats_app.stats.counts.planner import plan
from runstats_app.stats.counts.reader import count_buckets, count_statuses
from runstats_app.stats.counts.timeline import Grain, cover
from runstats_app.stats.history import resolve_range
from runstats_app.stats.result import COUNTS, SCAN
from runstats_app.stats.scan import count_by_bucket, count_by_status
from runstats_app.stats.service import StatsComputation

from ..support.api import PROPERTY_SETTINGS, create_run
from ..support.contract import CREATED_BY, NAME, STATUS_UPDATED_AT
from ..support.stats import STATS

NAMES = ("etl-a", "train-b", "Train-c")
CREATORS = (None, "alice", "bob")
TEAMS = ("ml", "ads", "ML")
STATUSES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED")
UNTRACKED = frozenset({"git_sha"})
ADMIN = ("root", "admin")


@pytest.fixture
def pg(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("the counts are maintained on PostgreSQL only")


@pytest.fixture
def untracked(pg: None, connection: Connection) -> None:
    connection.execute(text("INSERT INTO run_count_untracked_keys VALUES ('git_sha')"))


write = st.one_of(
    st.tuples(
        st.just("create"),
        st.sampled_from(NAMES),
        st.sampled_from(CREATORS),
        st.sampled_from(STATUSES[:2]),
        st.sampled_from(TEAMS),
    ),
    st.tuples(st.just("transition"), st.integers(0, 20), st.sampled_from(STATUSES[1:])),
    st.tuples(st.just("annotate"), st.integers(0, 20), st.sampled_from(TEAMS)),
    st.tuples(st.just("unannotate"), st.integers(0, 20)),
    st.tuples(
        st.just("sql-update"),
        st.integers(0, 20),
        st.sampled_from(["status", "name", "created_by", "created_at"]),
    ),
    st.tuples(st.just("sql-delete"), st.integers(0, 20)),
    st.tuples(st.just("sql-unannotate"), st.integers(0, 20)),
    st.tuples(st.just("fold")),
)


def _apply(step: tuple[Any, ...], client: Any, admin: dict[str, str], ids: list[str]) -> None:
    kind = step[0]
    connection = db.session().connection()
    if kind == "create":
        _, name, creator, status, team = step
        run = create_run(
            client,
            admin,
            name=name,
            created_by=creator,
            status=status,
            annotations={"team": team, "git_sha": f"{len(ids):07x}"},
        )
        ids.append(run["id"])
        return
    if kind == "fold":
        fold_once(connection)
        return
    if not ids:
        return
    run_id = ids[step[1] % len(ids)]
    if kind == "transition":
        client.post(
            f"/api/pipeline_runs/{run_id}/transitions", json={"status": step[2]}, headers=admin
        )
    elif kind == "annotate":
        client.put(
            f"/api/pipeline_runs/{run_id}/annotations/team", json={"value": step[2]}, headers=admin
        )
    elif kind == "unannotate":
        client.delete(f"/api/pipeline_runs/{run_id}/annotations/team", headers=admin)
    elif kind == "sql-update":
        column = step[2]
        value = {
            "status": "'CANCELLED'",
            "name": "'etl-a'",
            "created_by": "NULL",
            "created_at": "created_at - interval '3 hours 7 minutes'",
        }[column]
        connection.execute(
            text(f"UPDATE pipeline_runs SET {column} = {value} WHERE id = :id"), {"id": run_id}
        )
    elif kind == "sql-delete":
        connection.execute(text("DELETE FROM pipeline_runs WHERE id = :id"), {"id": run_id})
    elif kind == "sql-unannotate":
        connection.execute(text("DELETE FROM run_annotations WHERE run_id = :id"), {"id": run_id})
    db.session.remove()


def _filters(now: datetime) -> list[tuple[FilterNode | None, list[str] | None]]:
    hour_ago = now - timedelta(minutes=61, seconds=13)
    return [
        (None, None),
        (None, ["RUNNING", "CANCELLED"]),
        (nodes.And((nodes.ValueEquals(nodes.CREATED_BY, "alice"),)), None),
        (nodes.And((nodes.KeyExists(nodes.CREATED_BY),)), None),
        (nodes.And((nodes.ValueContains(nodes.NAME, "train"),)), None),
        (nodes.And((nodes.ValueIn(nodes.NAME, ("etl-a", "Train-c")),)), ["QUEUED"]),
        (nodes.And((nodes.ValueEquals("team", "ml"),)), None),
        (
            nodes.And(
                (nodes.ValueContains("team", "m"), nodes.ValueEquals(nodes.CREATED_BY, "bob"))
            ),
            None,
        ),
        (nodes.And((nodes.KeyExists("team"),)), None),
        (nodes.And((nodes.TimeRange(nodes.CREATED_AT, hour_ago, None),)), None),
        (
            nodes.And(
                (
                    nodes.TimeRange(nodes.CREATED_AT, None, now - timedelta(minutes=7)),
                    nodes.ValueIn(nodes.STATUS, ("QUEUED", "FAILED")),
                )
            ),
            None,
        ),
        (
            nodes.And(
                (
                    nodes.ValueEquals(nodes.CREATED_BY, "alice"),
                    nodes.ValueContains(nodes.NAME, "rain"),
                    nodes.TimeRange(
                        nodes.CREATED_AT,
                        now - timedelta(hours=5, minutes=3),
                        now + timedelta(minutes=1),
                    ),
                )
            ),
            None,
        ),
    ]


@settings(PROPERTY_SETTINGS, max_examples=40)
@given(steps=st.lists(write, min_size=1, max_size=25))
def test_counts_equal_the_group_by_after_any_writes(
    app, client, auth, savepoint, untracked, steps
):
    admin = auth(*ADMIN)
    with savepoint(), app.app_context():
        ids: list[str] = []
        for step in steps:
            _apply(step, client, admin, ids)
        session = db.session()
        now = datetime.now(UTC)
        for tree, statuses in _filters(now):
            query = plan(tree, statuses, UNTRACKED)
            assert query is not None, tree
            assert count_statuses(session, query, tree, statuses) == count_by_status(
                session, tree, statuses
            ), (tree, statuses)
            for bucket in ("hour", "day"):
                span = resolve_range(
                    bucket, now - timedelta(days=2), now + timedelta(hours=1), now
                )
                if history_rollup(query, history_unit(span)) is None:
                    continue
                assert count_buckets(session, query, tree, statuses, span) == count_by_bucket(
                    session, tree, statuses, span
                ), (tree, statuses, bucket)
        db.session.remove()


def _stats(client: Any, filter_query: dict[str, Any] | None = None) -> Any:
    params = {"filter_query": json.dumps(filter_query)} if filter_query else {}
    return client.get(STATS, query_string=params)


@pytest.mark.parametrize(
    "filter_query",
    [
        None,
        {"and": [{"value_equals": {"key": CREATED_BY, "value": "bob"}}]},
        {
            "and": [
                {"value_contains": {"key": NAME, "value_substring": "x"}},
                {"key_exists": {"key": "team"}},
            ]
        },
    ],
    ids=["none", "creator", "name-and-annotation"],
)
def test_answerable_filters_say_they_came_from_the_counts(pg, client, filter_query):
    response = _stats(client, filter_query)
    assert response.status_code == 200
    assert response.headers["X-Stats-Source"] == "counts"


@pytest.mark.parametrize(
    "filter_query",
    [
        {"or": [{"key_exists": {"key": "team"}}, {"key_exists": {"key": "env"}}]},
        {"and": [{"not": {"key_exists": {"key": "team"}}}]},
        {
            "and": [
                {
                    "time_range": {
                        "key": STATUS_UPDATED_AT,
                        "start_time": "2026-01-01T00:00:00Z",
                    }
                }
            ]
        },
        {"and": [{"key_exists": {"key": "team"}}, {"key_exists": {"key": "env"}}]},
    ],
    ids=["or", "not", "status-updated-at", "two-annotation-keys"],
)
def test_other_filters_say_they_scanned(pg, client, filter_query):
    response = _stats(client, filter_query)
    assert response.status_code == 200
    assert response.headers["X-Stats-Source"] == "scan"


def test_a_hit_says_the_source_of_the_result_it_serves(pg, client):
    first, second = _stats(client), _stats(client)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert second.headers["X-Stats-Source"] == first.headers["X-Stats-Source"] == "counts"


def test_an_untracked_key_is_scanned(client, untracked):
    response = _stats(client, {"and": [{"key_exists": {"key": "git_sha"}}]})
    assert response.headers["X-Stats-Source"] == "scan"


def test_while_the_counts_are_not_ready_every_filter_scans(pg, client, connection):
    connection.execute(text("UPDATE run_count_state SET ready = false"))
    assert _stats(client).headers["X-Stats-Source"] == "scan"


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE run_count_state SET ready = false",
        "INSERT INTO run_count_untracked_keys VALUES ('team')",
    ],
    ids=["rebuild-began", "key-untracked"],
)
def test_a_state_changed_between_plan_and_read_makes_the_answer_a_scan(
    pg, app, connection, change
):
    with app.app_context():
        computation = StatsComputation(nodes.And((nodes.ValueEquals("team", "ml"),)), None)
        assert computation.source == COUNTS
        connection.execute(text(change))
        assert computation().source == SCAN


def test_sqlite_always_scans(backend, client):
    if backend != "sqlite":
        pytest.skip("SQLite keeps no counts")
    response = _stats(client)
    assert response.headers["X-Stats-Source"] == "scan"
    history = client.get("/api/pipeline_runs/stats/history")
    assert history.headers["X-Stats-Source"] == "scan"


SPREAD_FROM = datetime(2026, 3, 1, tzinfo=UTC)
SPREAD_EVERY = timedelta(hours=31, minutes=17)
SPREAD_TO = SPREAD_FROM + 48 * SPREAD_EVERY
SPREAD_RANGES = (
    (SPREAD_FROM + timedelta(days=2, hours=5, minutes=13), None),
    (SPREAD_FROM + timedelta(days=2, hours=5), SPREAD_FROM + timedelta(days=57, hours=20)),
    (None, SPREAD_FROM + timedelta(days=28, hours=22, minutes=30)),
    (SPREAD_FROM + timedelta(days=3, hours=2), SPREAD_FROM + timedelta(days=29, hours=23)),
    (SPREAD_FROM + timedelta(days=9, hours=4), SPREAD_FROM + timedelta(days=20, hours=19)),
)


def test_a_range_read_as_coarser_buckets_less_their_outside_equals_the_group_by(
    app, client, auth, connection, untracked
):
    """Runs every 31 h 17 min over two months, half of them folded: ranges whose cover
    takes days or hours away from a month or a day (timeline.py) count what the runs say."""
    admin = auth(*ADMIN)
    with app.app_context():
        for index in range(48):
            run = create_run(
                client,
                admin,
                name=NAMES[index % 3],
                created_by=CREATORS[index % 3],
                status=STATUSES[index % 2],
                annotations={"team": TEAMS[index % 3]},
            )
            connection.execute(
                text("UPDATE pipeline_runs SET created_at = :at WHERE id = :id"),
                {"at": SPREAD_FROM + index * SPREAD_EVERY, "id": run["id"]},
            )
            if index == 24:
                fold_once(connection)
        session = db.session()
        for start, end in SPREAD_RANGES:
            covers = [cover(start, end, finest=grain) for grain in (Grain.HOUR, Grain.DAY)]
            assert any(piece.sign < 0 for one in covers for piece in one.buckets)
            period = nodes.TimeRange(nodes.CREATED_AT, start, end)
            for condition in (
                None,
                nodes.ValueEquals(nodes.CREATED_BY, "alice"),
                nodes.ValueContains(nodes.NAME, "train"),
                nodes.ValueEquals("team", "ml"),
            ):
                tree = nodes.And((period,) if condition is None else (period, condition))
                query = plan(tree, None, UNTRACKED)
                assert query is not None
                assert count_statuses(session, query, tree, None) == count_by_status(
                    session, tree, None
                ), (start, end, condition)
                span = resolve_range("day", start or SPREAD_FROM, end or SPREAD_TO, SPREAD_TO)
                if history_rollup(query, history_unit(span)) is not None:
                    assert count_buckets(session, query, tree, None, span) == count_by_bucket(
                        session, tree, None, span
                    ), (start, end, condition)
        db.session.remove()
