"""GET /api/pipeline_runs/stats against the contract (API.md), on every configured backend.

Counts are checked against the list endpoint for the same parameters: the
contract says total_runs is the number of rows the list pages through, and
counts_by_status is their breakdown. Each test scopes its runs with a unique
annotation so that it never depends on what else is in the database, and
gets a stats cache of its own (the `stats_cache` fixture).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from runstats_app.filters.schema import parse_filter_query
from runstats_app.stats.canonical import cache_key

from ..support.api import (
    ADMIN,
    PROPERTY_SETTINGS,
    RUNS,
    change_status,
    create_run,
    get_list,
    list_pages,
    post_status,
    query_params,
)
from ..support.contract import (
    CREATED_AT,
    CREATED_BY,
    NAME,
    NON_TERMINAL,
    STATUS,
    STATUS_UPDATED_AT,
    STATUSES,
)
from ..support.errors import assert_error_envelope
from ..support.filter_strategies import filter_roots, nested_predicates
from ..support.stats import (
    SUITE,
    get_stats,
    lease_held,
    max_age,
    redis_of,
    set_ttl_left,
    suite_filter,
)

Params = list[tuple[str, str]]


def stats_body(
    client: FlaskClient, query: Params, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    response = get_stats(client, query, headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.json
    return body


def status_counts(runs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    found = Counter(run["status"] for run in runs)
    return {status: found.get(status, 0) for status in STATUSES}


def redis_key(stats_cache: Any, query: Mapping[str, Any], statuses: Sequence[str] = ()) -> str:
    """The shared-cache key the endpoint uses for a filter without "me"."""
    return stats_cache.key_prefix + cache_key(parse_filter_query(json.dumps(query)), statuses)


@pytest.fixture
def mixed_runs(client, admin, tag) -> list[dict[str, Any]]:
    """Tagged runs covering most statuses, two annotation values, three creators, four names."""
    plan = [
        ("QUEUED", [], "alice", "a", "etl"),
        ("QUEUED", [], "bob", "b", "train"),
        ("PENDING", [], "alice", "a", "etl"),
        ("RUNNING", [], None, "a", "eval"),
        ("RUNNING", ["SUCCEEDED"], "bob", "a", "train"),
        ("RUNNING", ["SUCCEEDED"], "alice", "b", "export"),
        ("RUNNING", ["FAILED"], "alice", "a", "etl"),
        ("QUEUED", ["CANCELLED"], "bob", "b", "train"),
        ("RUNNING", ["CANCELLING"], "alice", "a", "eval"),
    ]
    runs = []
    for status, moves, creator, team, name in plan:
        run = create_run(
            client,
            admin,
            name=name,
            status=status,
            created_by=creator,
            annotations={SUITE: tag, "team": team},
        )
        for target in moves:
            run = change_status(client, admin, run["id"], target)
        runs.append(run)
    return runs


# --- the body ---------------------------------------------------------------------------------


def test_counts_cover_all_nine_statuses_zeros_included(client, mixed_runs, tag):
    counts = stats_body(client, query_params(suite_filter(tag)))["counts_by_status"]
    assert list(counts) == list(STATUSES)
    assert counts == status_counts(mixed_runs)
    assert counts["SKIPPED"] == counts["SYSTEM_ERROR"] == 0


def test_a_selection_of_no_runs_counts_zero_for_every_status(client, tag):
    body = stats_body(client, query_params(suite_filter(tag)))
    assert body["counts_by_status"] == dict.fromkeys(STATUSES, 0)
    assert body["total_runs"] == 0


def test_total_runs_is_the_sum_of_the_counts(client, mixed_runs, tag):
    body = stats_body(client, query_params(suite_filter(tag)))
    assert body["total_runs"] == sum(body["counts_by_status"].values()) == len(mixed_runs)


@pytest.mark.parametrize(
    "statuses", [(), ("QUEUED",), ("RUNNING", "SUCCEEDED", "SKIPPED")], ids=["all", "one", "three"]
)
def test_total_runs_equals_the_rows_the_list_pages_through(client, mixed_runs, tag, statuses):
    query = query_params(suite_filter(tag), statuses)
    body = stats_body(client, query)
    rows = list_pages(client, query, 2)
    assert body["total_runs"] == len(rows)
    assert body["counts_by_status"] == status_counts(rows)


@pytest.mark.parametrize(
    "statuses", [(), ("QUEUED",), ("RUNNING", "SUCCEEDED", "SKIPPED")], ids=["all", "one", "three"]
)
def test_total_pipelines_is_the_distinct_names_of_the_runs_the_list_pages_through(
    client, mixed_runs, tag, statuses
):
    query = query_params(suite_filter(tag), statuses)
    body = stats_body(client, query)
    assert body["total_pipelines"] == len({run["name"] for run in list_pages(client, query, 2)})


def test_body_has_total_runs_counts_pipelines_and_cached_at_in_utc(client, tag):
    before = datetime.now(UTC)
    body = stats_body(client, query_params(suite_filter(tag)))
    after = datetime.now(UTC)
    assert set(body) == {"total_runs", "counts_by_status", "total_pipelines", "cached_at"}
    assert body["cached_at"].endswith("Z")
    cached_at = datetime.fromisoformat(body["cached_at"])
    assert before <= cached_at <= after


def test_without_parameters_counts_every_run_the_list_returns(client, mixed_runs):
    assert stats_body(client, [])["counts_by_status"] == status_counts(list_pages(client, [], 100))


# --- parameters, as in the list -----------------------------------------------------------------


def test_status_parameter_counts_only_runs_in_those_statuses(client, mixed_runs, tag):
    counts = stats_body(client, query_params(suite_filter(tag), ["RUNNING", "FAILED"]))[
        "counts_by_status"
    ]
    expected = status_counts([r for r in mixed_runs if r["status"] in ("RUNNING", "FAILED")])
    assert counts == expected
    assert counts["RUNNING"] == counts["FAILED"] == 1


def test_filter_query_restricts_the_counts_like_the_list(client, mixed_runs, tag):
    query = query_params(suite_filter(tag, {"value_equals": {"key": "team", "value": "b"}}))
    counts = stats_body(client, query)["counts_by_status"]
    assert counts == status_counts([r for r in mixed_runs if r["annotations"]["team"] == "b"])
    assert counts == status_counts(list_pages(client, query, 2))


def test_not_on_created_by_counts_runs_without_a_creator(client, mixed_runs, tag):
    query = query_params(
        suite_filter(tag, {"not": {"value_equals": {"key": CREATED_BY, "value": "alice"}}})
    )
    body = stats_body(client, query)
    assert body["total_runs"] == sum(r["created_by"] != "alice" for r in mixed_runs)


def test_me_resolves_to_current_user_without_a_token(client, mixed_runs, tag):
    mine = suite_filter(tag, {"value_equals": {"key": CREATED_BY, "value": "me"}})
    counts = stats_body(client, query_params(mine, current_user="bob"))["counts_by_status"]
    assert counts == status_counts([r for r in mixed_runs if r["created_by"] == "bob"])


def test_me_resolves_to_the_token_user_rather_than_current_user(client, auth, mixed_runs, tag):
    mine = suite_filter(tag, {"value_in": {"key": CREATED_BY, "values": ["me"]}})
    body = stats_body(client, query_params(mine, current_user="bob"), auth("alice", "reader"))
    assert body["counts_by_status"] == status_counts(
        [r for r in mixed_runs if r["created_by"] == "alice"]
    )


def test_me_for_two_users_is_never_served_from_one_entry(client, mixed_runs, tag):
    mine = suite_filter(tag, {"value_equals": {"key": CREATED_BY, "value": "me"}})
    as_alice = get_stats(client, query_params(mine, current_user="alice"))
    as_bob = get_stats(client, query_params(mine, current_user="bob"))
    assert [as_alice.headers["X-Cache"], as_bob.headers["X-Cache"]] == ["miss", "miss"]
    assert as_alice.json["counts_by_status"] != as_bob.json["counts_by_status"]


@pytest.mark.parametrize(
    ("query", "where"),
    [
        (query_params("{not json"), "filter_query"),
        (
            query_params({"and": [{"value_equals": {"key": "system/nope", "value": "x"}}]}),
            "filter_query",
        ),
        (query_params({"and": []}), "filter_query"),
        ([("filter", "{}")], "filter"),
        ([("page_size", "10")], "page_size"),
        (query_params(statuses=["DONE"]), "status"),
        (
            query_params({"and": [{"value_equals": {"key": CREATED_BY, "value": "me"}}]}),
            "current_user",
        ),
    ],
    ids=[
        "malformed-json",
        "unknown-system-key",
        "empty-and",
        "unknown-parameter",
        "list-only-parameter",
        "unknown-status",
        "me-without-user",
    ],
)
def test_bad_parameters_are_400_with_the_error_envelope_naming_them(client, query, where):
    body = assert_error_envelope(get_stats(client, query), 400)
    assert where in body["errors"]["query"]


def test_bad_parameters_are_never_cached(client, stats_cache):
    for _ in range(2):
        assert_error_envelope(get_stats(client, query_params("{not json")), 400)
    assert redis_of(stats_cache).keys(f"{stats_cache.key_prefix}*") == []


# --- caching ----------------------------------------------------------------------------------


def test_first_request_is_a_miss_and_the_next_a_hit(client, tag):
    query = query_params(suite_filter(tag))
    first, second = get_stats(client, query), get_stats(client, query)
    assert [first.headers["X-Cache"], second.headers["X-Cache"]] == ["miss", "hit"]


def test_a_hit_serves_the_body_of_the_miss(client, mixed_runs, tag):
    query = query_params(suite_filter(tag))
    first, second = get_stats(client, query), get_stats(client, query)
    assert second.get_data() == first.get_data()


def test_a_miss_has_max_age_of_the_ttl(client, stats_cache, tag):
    ttl = stats_cache.settings.ttl_ms // 1000
    response = get_stats(client, query_params(suite_filter(tag)))
    assert int(ttl * 0.9) <= max_age(response) <= ttl


def test_a_hit_has_max_age_of_the_time_left_before_the_ttl(client, stats_cache, tag):
    query = suite_filter(tag)
    get_stats(client, query_params(query))
    set_ttl_left(stats_cache, redis_key(stats_cache, query), 5500)
    response = get_stats(client, query_params(query))
    assert (response.headers["X-Cache"], max_age(response)) == ("hit", 5)


def test_an_equivalent_filter_written_differently_is_a_hit(client, tag):
    team = {"value_in": {"values": ["b", "a"], "key": "team"}}
    first = suite_filter(tag, team)
    second = {"and": [{"and": [team]}, {"value_equals": {"value": tag, "key": SUITE}}]}
    get_stats(client, query_params(first, ["FAILED", "QUEUED"]))
    response = get_stats(client, query_params(second, ["QUEUED", "FAILED", "QUEUED"]))
    assert response.headers["X-Cache"] == "hit"


def test_status_change_after_a_cached_result_is_not_visible_while_it_is_cached(client, admin, tag):
    run = create_run(client, admin, status="RUNNING", annotations={SUITE: tag})
    query = query_params(suite_filter(tag))
    stats_body(client, query)
    change_status(client, admin, run["id"], "SUCCEEDED")
    response = get_stats(client, query)
    assert response.headers["X-Cache"] == "hit"
    assert response.json["counts_by_status"]["RUNNING"] == 1
    assert response.json["counts_by_status"]["SUCCEEDED"] == 0


def test_status_change_after_a_cached_result_is_visible_with_another_filter(client, admin, tag):
    run = create_run(client, admin, status="RUNNING", annotations={SUITE: tag})
    stats_body(client, query_params(suite_filter(tag)))
    change_status(client, admin, run["id"], "SUCCEEDED")
    other = suite_filter(tag, {"key_exists": {"key": SUITE}})
    counts = stats_body(client, query_params(other))["counts_by_status"]
    assert (counts["RUNNING"], counts["SUCCEEDED"]) == (0, 1)


def test_status_change_is_visible_once_the_ttl_has_passed(client, admin, stats_cache, tag):
    run = create_run(client, admin, status="RUNNING", annotations={SUITE: tag})
    query = suite_filter(tag)
    stats_body(client, query_params(query))
    change_status(client, admin, run["id"], "SUCCEEDED")
    set_ttl_left(stats_cache, redis_key(stats_cache, query), -1000)
    response = get_stats(client, query_params(query))
    assert response.headers["X-Cache"] == "miss"
    assert (
        response.json["counts_by_status"]["RUNNING"],
        response.json["counts_by_status"]["SUCCEEDED"],
    ) == (0, 1)


def test_past_the_ttl_while_another_worker_recomputes_the_answer_is_stale_with_max_age_0(
    client, stats_cache, tag
):
    query = suite_filter(tag)
    first = get_stats(client, query_params(query))
    key = redis_key(stats_cache, query)
    set_ttl_left(stats_cache, key, -1000)
    with lease_held(stats_cache, key):
        response = get_stats(client, query_params(query))
    assert (response.headers["X-Cache"], max_age(response)) == ("stale", 0)
    assert response.get_data() == first.get_data()


def test_no_result_within_the_wait_budget_is_503_with_retry_after(
    client, stats_cache, tag, monkeypatch
):
    query = suite_filter(tag)
    monkeypatch.setattr(stats_cache, "settings", replace(stats_cache.settings, wait_ms=300))
    with lease_held(stats_cache, redis_key(stats_cache, query)):
        response = get_stats(client, query_params(query))
    assert_error_envelope(response, 503)
    assert int(response.headers["Retry-After"]) >= 1


def test_redis_unusable_still_answers_200_bypass_with_max_age_0(
    client, stats_cache, mixed_runs, tag
):
    for _ in range(stats_cache.settings.breaker_threshold):
        stats_cache.shared.breaker.failure()
    try:
        response = get_stats(client, query_params(suite_filter(tag)))
    finally:
        stats_cache.shared.breaker.success()
    assert response.status_code == 200
    assert (response.headers["X-Cache"], max_age(response)) == ("bypass", 0)
    assert response.json["counts_by_status"] == status_counts(mixed_runs)


# --- property: stats agree with the list --------------------------------------------------------

TEAMS = ("a", "b", "")
NAMES = ("build", "Build", "test_1", "100%")
CREATORS = (None, "alice", "bob")


@dataclass(frozen=True)
class RunSpec:
    name: str
    created_by: str | None
    team: str | None
    status: str
    max_attempts: int
    moves: tuple[str, ...]


run_specs = st.builds(
    RunSpec,
    name=st.sampled_from(NAMES),
    created_by=st.sampled_from(CREATORS),
    team=st.none() | st.sampled_from(TEAMS),
    status=st.sampled_from(NON_TERMINAL),
    max_attempts=st.sampled_from((1, 2)),
    moves=st.lists(st.sampled_from((*STATUSES, "cancel")), max_size=3).map(tuple),
)


@dataclass(frozen=True)
class TimeBound:
    """A run's timestamp (resolved once the runs exist, since the server sets them)."""

    run_index: int
    field: str


def _value_leaf(key: str, values: Sequence[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.sampled_from(values).map(lambda v: {"value_equals": {"key": key, "value": v}}),
        st.lists(st.sampled_from(values), min_size=1, max_size=3).map(
            lambda vs: {"value_in": {"key": key, "values": vs}}
        ),
    )


leaves = st.one_of(
    st.sampled_from(("team", CREATED_BY, NAME)).map(lambda k: {"key_exists": {"key": k}}),
    _value_leaf("team", TEAMS),
    _value_leaf(CREATED_BY, ("alice", "bob", "me")),
    _value_leaf(STATUS, STATUSES),
    _value_leaf(NAME, NAMES),
    st.builds(
        lambda key, sub: {"value_contains": {"key": key, "value_substring": sub}},
        st.sampled_from((NAME, "team")),
        st.sampled_from(("b", "B", "_", "%", "a")),
    ),
    st.builds(
        lambda key, bound, side: {"time_range": {"key": key, side: bound}},
        st.sampled_from((CREATED_AT, STATUS_UPDATED_AT)),
        st.builds(
            TimeBound, st.integers(0, 7), st.sampled_from(("created_at", "status_updated_at"))
        ),
        st.sampled_from(("start_time", "end_time")),
    ),
)


@dataclass(frozen=True)
class Query:
    filter_query: dict[str, Any] | None
    statuses: tuple[str, ...]
    token_user: str | None
    current_user: str | None


queries = st.builds(
    Query,
    filter_query=st.none() | filter_roots(nested_predicates(leaves, 2), max_size=2),
    statuses=st.just(())
    | st.just(())
    | st.lists(st.sampled_from(STATUSES), min_size=1, max_size=4).map(tuple),
    token_user=st.sampled_from((None, None, "alice")),
    current_user=st.sampled_from((None, "bob")),
)


def _resolve_bounds(node: Any, runs: Sequence[Mapping[str, Any]]) -> Any:
    if isinstance(node, TimeBound):
        return runs[node.run_index % len(runs)][node.field]
    if isinstance(node, dict):
        return {name: _resolve_bounds(body, runs) for name, body in node.items()}
    if isinstance(node, list):
        return [_resolve_bounds(item, runs) for item in node]
    return node


def _create(client: FlaskClient, admin: Mapping[str, str], spec: RunSpec) -> str:
    run = create_run(
        client,
        admin,
        name=spec.name,
        created_by=spec.created_by,
        status=spec.status,
        max_attempts=spec.max_attempts,
        annotations={} if spec.team is None else {"team": spec.team},
    )
    for move in spec.moves:
        response = post_status(client, admin, run["id"], move)
        assert response.status_code in (200, 409), response.get_data(as_text=True)
    return str(run["id"])


@settings(PROPERTY_SETTINGS, max_examples=40)
@given(
    specs=st.lists(run_specs, min_size=3, max_size=8),
    query_list=st.lists(queries, min_size=1, max_size=3),
)
def test_stats_count_per_status_exactly_the_runs_the_list_returns(
    client, auth, savepoint, stats_caches, specs, query_list
):
    admin = auth(*ADMIN)
    readers = {"alice": auth("alice", "reader")}
    with savepoint():
        stats_caches.install()
        ids = [_create(client, admin, spec) for spec in specs]
        runs = [client.get(f"{RUNS}{run_id}").json for run_id in ids]
        for query in query_list:
            filter_query = _resolve_bounds(query.filter_query, runs)
            request = query_params(filter_query, query.statuses, current_user=query.current_user)
            headers = readers.get(query.token_user or "", {})
            response = get_stats(client, request, headers)
            listing = get_list(client, request, headers)
            if listing.status_code == 400:
                assert_error_envelope(response, 400)
                continue
            assert response.status_code == 200, response.get_data(as_text=True)
            rows = list_pages(client, request, 4, headers)
            assert response.json["counts_by_status"] == status_counts(rows), filter_query
            assert response.json["total_runs"] == len(rows)
