"""GET /api/pipeline_runs/stats/history: counts by status per UTC hour or day, cached like stats.

Runs are created through the API, tagged with a unique annotation, and then
moved in time by updating `created_at` inside the test's transaction (the
server sets it at creation). Each test has a stats cache of its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.test import TestResponse

from runstats_app.filters.schema import parse_filter_query
from runstats_app.models import PipelineRun
from runstats_app.stats.canonical import history_cache_key
from runstats_app.stats.history import MAX_BUCKETS

from ..support.api import change_status, create_run, query_params
from ..support.contract import CREATED_AT, CREATED_BY, STATUSES
from ..support.errors import assert_error_envelope
from ..support.stats import (
    SUITE,
    get_stats,
    lease_held,
    max_age,
    redis_of,
    set_ttl_left,
    suite_filter,
)

HISTORY_URL = "/api/pipeline_runs/stats/history"
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MARCH_10 = datetime(2025, 3, 10, tzinfo=UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def history_params(
    filter_query: Mapping[str, Any] | None = None,
    statuses: Sequence[str] = (),
    *,
    bucket: str | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    current_user: str | None = None,
) -> list[tuple[str, str]]:
    query = query_params(filter_query, statuses, current_user=current_user)
    if bucket is not None:
        query.append(("bucket", bucket))
    for name, value in (("start_time", start), ("end_time", end)):
        if value is not None:
            query.append((name, value if isinstance(value, str) else rfc3339(value)))
    return query


def get_history(
    client: FlaskClient, query: list[tuple[str, str]], headers: Mapping[str, str] | None = None
) -> TestResponse:
    return client.get(f"{HISTORY_URL}?{urlencode(query)}", headers=dict(headers or {}))


def history_body(client: FlaskClient, query: list[tuple[str, str]]) -> dict[str, Any]:
    response = get_history(client, query)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.json
    return body


def by_start(body: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    return {bucket["start_time"]: bucket["counts_by_status"] for bucket in body["buckets"]}


def tagged_run_at(
    client: FlaskClient,
    connection: Any,
    admin: Mapping[str, str],
    tag: str,
    at: datetime,
    status: str = "QUEUED",
    **body: Any,
) -> dict[str, Any]:
    """A tagged run whose created_at is moved to `at` (and that reached `status`)."""
    annotations = {SUITE: tag, **body.pop("annotations", {})}
    run = create_run(client, admin, annotations=annotations, **body)
    if status != "QUEUED":
        run = change_status(client, admin, run["id"], status)
    connection.execute(
        update(PipelineRun).where(PipelineRun.id == run["id"]).values(created_at=at)
    )
    return run


def redis_key(stats_cache: Any, query: Mapping[str, Any], bucket: str, start, end) -> str:
    tree = parse_filter_query(json.dumps(query))
    return stats_cache.key_prefix + history_cache_key(tree, (), bucket, start, end)


# --- buckets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("bucket", "step"), [("day", DAY), ("hour", HOUR)])
def test_a_run_exactly_at_a_bucket_start_belongs_to_that_bucket(
    client, connection, admin, tag, bucket, step
):
    boundary = MARCH_10 + step
    tagged_run_at(client, connection, admin, tag, boundary)
    tagged_run_at(client, connection, admin, tag, boundary - timedelta(microseconds=1))
    body = history_body(
        client,
        history_params(suite_filter(tag), bucket=bucket, start=MARCH_10, end=MARCH_10 + 3 * step),
    )
    totals = [bucket["total_runs"] for bucket in body["buckets"]]
    assert totals == [1, 1, 0]
    assert body["buckets"][1]["start_time"] == rfc3339(boundary)


def test_every_bucket_of_the_range_is_present_with_zeros_for_every_status(
    client, connection, admin, tag
):
    tagged_run_at(client, connection, admin, tag, MARCH_10 + 2 * DAY + 5 * HOUR)
    body = history_body(
        client, history_params(suite_filter(tag), start=MARCH_10, end=MARCH_10 + 5 * DAY)
    )
    assert [bucket["start_time"] for bucket in body["buckets"]] == [
        rfc3339(MARCH_10 + index * DAY) for index in range(5)
    ]
    for index, bucket in enumerate(body["buckets"]):
        assert list(bucket["counts_by_status"]) == list(STATUSES)
        assert bucket["total_runs"] == (1 if index == 2 else 0)
    assert body["buckets"][2]["counts_by_status"]["QUEUED"] == 1


def test_a_selection_of_no_runs_has_every_bucket_at_zero(client, tag):
    body = history_body(
        client,
        history_params(suite_filter(tag), bucket="hour", start=MARCH_10, end=MARCH_10 + DAY),
    )
    assert len(body["buckets"]) == 24
    assert all(bucket["total_runs"] == 0 for bucket in body["buckets"])
    assert all(
        bucket["counts_by_status"] == dict.fromkeys(STATUSES, 0) for bucket in body["buckets"]
    )


def test_body_names_the_bucket_the_range_and_cached_at(client, tag):
    before = datetime.now(UTC)
    body = history_body(
        client, history_params(suite_filter(tag), start=MARCH_10, end=MARCH_10 + 2 * DAY)
    )
    assert set(body) == {"bucket", "start_time", "end_time", "buckets", "cached_at"}
    assert (body["bucket"], body["start_time"], body["end_time"]) == (
        "day",
        "2025-03-10T00:00:00Z",
        "2025-03-12T00:00:00Z",
    )
    assert before <= datetime.fromisoformat(body["cached_at"]) <= datetime.now(UTC)
    assert set(body["buckets"][0]) == {"start_time", "total_runs", "counts_by_status"}


def test_runs_outside_the_range_are_not_counted(client, connection, admin, tag):
    tagged_run_at(client, connection, admin, tag, MARCH_10 - timedelta(microseconds=1))
    tagged_run_at(client, connection, admin, tag, MARCH_10 + 2 * DAY)
    tagged_run_at(client, connection, admin, tag, MARCH_10 + DAY)
    body = history_body(
        client, history_params(suite_filter(tag), start=MARCH_10, end=MARCH_10 + 2 * DAY)
    )
    assert [bucket["total_runs"] for bucket in body["buckets"]] == [0, 1]


def test_the_range_is_widened_to_whole_buckets(client, connection, admin, tag):
    tagged_run_at(client, connection, admin, tag, MARCH_10 + 10 * HOUR + timedelta(minutes=5))
    body = history_body(
        client,
        history_params(
            suite_filter(tag),
            bucket="hour",
            start=MARCH_10 + 10 * HOUR + timedelta(minutes=15),
            end=MARCH_10 + 12 * HOUR + timedelta(minutes=30),
        ),
    )
    assert (body["start_time"], body["end_time"]) == (
        "2025-03-10T10:00:00Z",
        "2025-03-10T13:00:00Z",
    )
    assert [bucket["total_runs"] for bucket in body["buckets"]] == [1, 0, 0]


def test_offsets_other_than_utc_are_converted_before_bucketing(client, connection, admin, tag):
    tagged_run_at(client, connection, admin, tag, MARCH_10 + 23 * HOUR)
    body = history_body(
        client,
        history_params(
            suite_filter(tag), start="2025-03-10T02:00:00+02:00", end="2025-03-11T12:00:00-02:00"
        ),
    )
    assert body["start_time"] == "2025-03-10T00:00:00Z"
    assert by_start(body)["2025-03-10T00:00:00Z"]["QUEUED"] == 1


@pytest.mark.parametrize(("bucket", "span"), [("day", 30 * DAY), ("hour", 48 * HOUR)])
def test_the_default_range_ends_with_the_current_bucket(client, tag, bucket, span):
    before = datetime.now(UTC)
    body = history_body(client, history_params(suite_filter(tag), bucket=bucket))
    end = datetime.fromisoformat(body["end_time"])
    start = datetime.fromisoformat(body["start_time"])
    assert end - start == span
    assert end - (DAY if bucket == "day" else HOUR) <= before < end + timedelta(seconds=5)
    assert len(body["buckets"]) == span // (DAY if bucket == "day" else HOUR)


def test_only_a_start_time_ends_the_range_with_the_current_bucket(client, tag):
    start = datetime.now(UTC) - 3 * DAY
    body = history_body(client, history_params(suite_filter(tag), start=start))
    assert len(body["buckets"]) == 4


def test_the_runs_created_now_are_in_the_last_default_bucket(client, admin, tag):
    create_run(client, admin, annotations={SUITE: tag})
    body = history_body(client, history_params(suite_filter(tag), bucket="hour"))
    assert [bucket["total_runs"] for bucket in body["buckets"]][-1:] == [1]


# --- the same filters as stats ----------------------------------------------------------------


def test_bucket_counts_add_up_to_the_stats_for_the_same_filter_and_range(
    client, connection, admin, tag
):
    plan = [
        (0, "QUEUED", "alice"),
        (0, "RUNNING", "bob"),
        (1, "RUNNING", "alice"),
        (3, "CANCELLED", "alice"),
        (3, "SKIPPED", None),
        (6, "QUEUED", "bob"),
    ]
    for day, status, creator in plan:
        tagged_run_at(
            client, connection, admin, tag, MARCH_10 + day * DAY, status, created_by=creator
        )
    mine = {"value_equals": {"key": CREATED_BY, "value": "me"}}
    query = suite_filter(tag, mine)
    body = history_body(
        client,
        history_params(
            query, bucket="day", start=MARCH_10, end=MARCH_10 + 5 * DAY, current_user="alice"
        ),
    )
    window = {
        "time_range": {
            "key": CREATED_AT,
            "start_time": "2025-03-10T00:00:00Z",
            "end_time": "2025-03-15T00:00:00Z",
        }
    }
    stats = get_stats(
        client, query_params(suite_filter(tag, mine, window), current_user="alice")
    ).json
    summed = {
        status: sum(b["counts_by_status"][status] for b in body["buckets"]) for status in STATUSES
    }
    assert summed == stats["counts_by_status"]
    assert [bucket["total_runs"] for bucket in body["buckets"]] == [1, 1, 0, 1, 0]


def test_status_parameter_counts_only_those_statuses(client, connection, admin, tag):
    tagged_run_at(client, connection, admin, tag, MARCH_10, "RUNNING")
    tagged_run_at(client, connection, admin, tag, MARCH_10, "CANCELLED")
    body = history_body(
        client,
        history_params(suite_filter(tag), ["RUNNING"], start=MARCH_10, end=MARCH_10 + DAY),
    )
    assert body["buckets"][0]["counts_by_status"]["RUNNING"] == 1
    assert body["buckets"][0]["total_runs"] == 1


# --- bad parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bucket", "span", "ok"),
    [
        ("day", MAX_BUCKETS * DAY, True),
        ("day", (MAX_BUCKETS + 1) * DAY, False),
        ("hour", MAX_BUCKETS * HOUR, True),
        ("hour", (MAX_BUCKETS + 1) * HOUR, False),
    ],
    ids=["day-at-limit", "day-over", "hour-at-limit", "hour-over"],
)
def test_more_than_the_bucket_limit_is_400_naming_it(client, tag, bucket, span, ok):
    response = get_history(
        client,
        history_params(suite_filter(tag), bucket=bucket, start=MARCH_10, end=MARCH_10 + span),
    )
    if ok:
        assert response.status_code == 200
        assert len(response.json["buckets"]) == MAX_BUCKETS
        return
    body = assert_error_envelope(response, 400)
    assert str(MAX_BUCKETS) in body["message"] and "bucket limit" in body["message"]
    assert set(body["errors"]["query"]) & {"start_time", "end_time"}


def test_a_range_widened_past_the_limit_is_400(client, tag):
    start = MARCH_10 + 12 * HOUR
    response = get_history(
        client, history_params(suite_filter(tag), start=start, end=start + MAX_BUCKETS * DAY)
    )
    assert "bucket limit" in assert_error_envelope(response, 400)["message"]


@pytest.mark.parametrize("name", ["start_time", "end_time"])
def test_naive_timestamps_are_400(client, name):
    response = get_history(client, [(name, "2025-03-10T00:00:00")])
    body = assert_error_envelope(response, 400)
    assert name in body["errors"]["query"]
    assert "offset" in body["message"]


@pytest.mark.parametrize(
    ("query", "where"),
    [
        (
            [("start_time", "2025-03-11T00:00:00Z"), ("end_time", "2025-03-10T00:00:00Z")],
            "start_time",
        ),
        (
            [("start_time", "2025-03-10T00:00:00Z"), ("end_time", "2025-03-10T00:00:00Z")],
            "start_time",
        ),
        ([("bucket", "week")], "bucket"),
        ([("bucket", "day"), ("bucket", "hour")], "bucket"),
        ([("start_time", "yesterday")], "start_time"),
        ([("page_size", "10")], "page_size"),
        (query_params(statuses=["DONE"]), "status"),
        (
            query_params({"and": [{"value_equals": {"key": CREATED_BY, "value": "me"}}]}),
            "current_user",
        ),
        ([("end_time", "0001-01-01T00:00:00Z")], "start_time"),
    ],
    ids=[
        "start-after-end",
        "empty-range",
        "unknown-bucket",
        "repeated-bucket",
        "not-a-timestamp",
        "unknown-parameter",
        "unknown-status",
        "me-without-user",
        "before-the-first-date",
    ],
)
def test_bad_parameters_are_400_naming_them(client, stats_cache, query, where):
    body = assert_error_envelope(get_history(client, query), 400)
    assert where in body["errors"]["query"]
    assert redis_of(stats_cache).keys(f"{stats_cache.key_prefix}*") == []


# --- caching, as for stats --------------------------------------------------------------------


def test_the_path_is_not_taken_for_a_run_id(client):
    response = client.get(HISTORY_URL)
    assert response.status_code == 200
    assert "buckets" in response.json


def test_first_request_is_a_miss_and_the_next_a_hit_with_the_same_body(client, admin, tag):
    create_run(client, admin, annotations={SUITE: tag})
    query = history_params(suite_filter(tag))
    first, second = get_history(client, query), get_history(client, query)
    assert [first.headers["X-Cache"], second.headers["X-Cache"]] == ["miss", "hit"]
    assert second.get_data() == first.get_data()


def test_a_miss_has_max_age_of_the_ttl(client, stats_cache, tag):
    ttl = stats_cache.settings.ttl_ms // 1000
    response = get_history(client, history_params(suite_filter(tag)))
    assert int(ttl * 0.9) <= max_age(response) <= ttl


def test_a_hit_has_max_age_of_the_time_left_before_the_ttl(client, stats_cache, tag):
    query, end = suite_filter(tag), MARCH_10 + DAY
    get_history(client, history_params(query, start=MARCH_10, end=end))
    key = redis_key(stats_cache, query, "day", MARCH_10, end)
    set_ttl_left(stats_cache, key, 5500)
    response = get_history(client, history_params(query, start=MARCH_10, end=end))
    assert (response.headers["X-Cache"], max_age(response)) == ("hit", 5)


def test_equivalent_filters_and_ranges_share_one_entry(client, tag):
    team = {"value_in": {"values": ["b", "a"], "key": "team"}}
    first = history_params(
        suite_filter(tag, team),
        ["FAILED", "QUEUED"],
        bucket="hour",
        start=MARCH_10,
        end=MARCH_10 + 2 * HOUR,
    )
    second = history_params(
        {"and": [{"and": [team]}, {"value_equals": {"value": tag, "key": SUITE}}]},
        ["QUEUED", "FAILED", "QUEUED"],
        bucket="hour",
        start="2025-03-10T02:30:00+02:00",
        end="2025-03-10T01:59:00Z",
    )
    assert get_history(client, first).headers["X-Cache"] == "miss"
    assert get_history(client, second).headers["X-Cache"] == "hit"


def test_another_bucket_or_range_is_another_entry(client, tag):
    query = suite_filter(tag)
    get_history(client, history_params(query, bucket="day", start=MARCH_10, end=MARCH_10 + DAY))
    hourly = get_history(
        client, history_params(query, bucket="hour", start=MARCH_10, end=MARCH_10 + DAY)
    )
    longer = get_history(
        client, history_params(query, bucket="day", start=MARCH_10, end=MARCH_10 + 2 * DAY)
    )
    assert [hourly.headers["X-Cache"], longer.headers["X-Cache"]] == ["miss", "miss"]


def test_history_and_stats_do_not_share_entries(client, tag):
    query = query_params(suite_filter(tag))
    assert get_stats(client, query).headers["X-Cache"] == "miss"
    assert get_history(client, query).headers["X-Cache"] == "miss"


def test_me_for_two_users_is_never_served_from_one_entry(client, connection, admin, tag):
    tagged_run_at(client, connection, admin, tag, MARCH_10, created_by="alice")
    mine = suite_filter(tag, {"value_equals": {"key": CREATED_BY, "value": "me"}})
    as_alice = get_history(
        client, history_params(mine, start=MARCH_10, end=MARCH_10 + DAY, current_user="alice")
    )
    as_bob = get_history(
        client, history_params(mine, start=MARCH_10, end=MARCH_10 + DAY, current_user="bob")
    )
    assert [as_alice.headers["X-Cache"], as_bob.headers["X-Cache"]] == ["miss", "miss"]
    assert [
        as_alice.json["buckets"][0]["total_runs"],
        as_bob.json["buckets"][0]["total_runs"],
    ] == [
        1,
        0,
    ]


def test_a_change_is_not_visible_while_cached_and_visible_after_the_ttl(
    client, connection, admin, stats_cache, tag
):
    run = tagged_run_at(client, connection, admin, tag, MARCH_10, "RUNNING")
    query, end = suite_filter(tag), MARCH_10 + DAY
    history_body(client, history_params(query, start=MARCH_10, end=end))
    change_status(client, admin, run["id"], "SUCCEEDED")
    cached = get_history(client, history_params(query, start=MARCH_10, end=end))
    assert cached.headers["X-Cache"] == "hit"
    assert cached.json["buckets"][0]["counts_by_status"]["RUNNING"] == 1
    set_ttl_left(stats_cache, redis_key(stats_cache, query, "day", MARCH_10, end), -1000)
    fresh = get_history(client, history_params(query, start=MARCH_10, end=end))
    assert fresh.headers["X-Cache"] == "miss"
    assert fresh.json["buckets"][0]["counts_by_status"]["SUCCEEDED"] == 1


def test_past_the_ttl_while_another_worker_recomputes_the_answer_is_stale(
    client, stats_cache, tag
):
    query, end = suite_filter(tag), MARCH_10 + DAY
    first = get_history(client, history_params(query, start=MARCH_10, end=end))
    key = redis_key(stats_cache, query, "day", MARCH_10, end)
    set_ttl_left(stats_cache, key, -1000)
    with lease_held(stats_cache, key):
        response = get_history(client, history_params(query, start=MARCH_10, end=end))
    assert (response.headers["X-Cache"], max_age(response)) == ("stale", 0)
    assert response.get_data() == first.get_data()


def test_redis_unusable_still_answers_200_bypass_with_max_age_0(client, stats_cache, tag):
    for _ in range(stats_cache.settings.breaker_threshold):
        stats_cache.shared.breaker.failure()
    try:
        response = get_history(client, history_params(suite_filter(tag)))
    finally:
        stats_cache.shared.breaker.success()
    assert response.status_code == 200
    assert (response.headers["X-Cache"], max_age(response)) == ("bypass", 0)


# --- documentation ----------------------------------------------------------------------------


def test_the_openapi_document_describes_the_endpoint(client):
    spec = client.get("/api/openapi.json").json
    operation = spec["paths"][HISTORY_URL]["get"]
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert {"filter_query", "current_user", "status", "bucket", "start_time", "end_time"} <= names
    assert {"X-Cache", "Cache-Control"} <= set(operation["responses"]["200"]["headers"])
