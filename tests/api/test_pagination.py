"""Keyset pagination of GET /api/pipeline_runs/: complete, ordered, stable, bound to its filter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from runstats_app.extensions import db
from runstats_app.models import PipelineRun
from runstats_app.pagination import filter_binding

from ..support.api import (
    change_status,
    create_runs,
    get_list,
    query_params,
    walk_pages,
)
from ..support.errors import assert_error_envelope
from ..support.filter_oracle import newest_first

TEAM_A = {"and": [{"value_equals": {"key": "team", "value": "a"}}]}
TEAM_B = {"and": [{"value_equals": {"key": "team", "value": "b"}}]}


def first_page(client, page_size, filter_query=None, statuses=()):
    response = get_list(client, query_params(filter_query, statuses, page_size=page_size))
    assert response.status_code == 200, response.json
    return response.json


def insert_run(app, run_id, created_at, **fields):
    """A run written straight to the database, to choose its created_at (and id)."""
    values = {
        "name": "direct",
        "created_by": "alice",
        "updated_at": created_at,
        "status": "QUEUED",
        "status_updated_at": created_at,
        "attempt": 1,
        "max_attempts": 1,
        **fields,
    }
    with app.app_context():
        session = db.session()
        session.add(PipelineRun(id=run_id, created_at=created_at, **values))
        session.commit()


def assert_token_rejected(response):
    body = assert_error_envelope(response, 400)
    assert "page_token" in json.dumps(body)


# --- walking ------------------------------------------------------------------------


def test_every_page_size_walks_all_runs_once_newest_first(client, auth):
    runs = create_runs(client, auth(), 23)
    expected = newest_first(runs)
    for page_size in range(1, 26):
        assert walk_pages(client, [], page_size) == expected, f"page_size={page_size}"


@pytest.mark.parametrize("page_size", [5, 10, 20])
def test_exactly_full_last_page_has_no_next_page_token(client, auth, page_size):
    runs = create_runs(client, auth(), 20)
    token = None
    pages = []
    for _ in range(20 // page_size):
        params = query_params(page_size=page_size, page_token=token)
        body = get_list(client, params).json
        pages.append([run["id"] for run in body["pipeline_runs"]])
        token = body["next_page_token"]
    assert token is None
    assert [run_id for page in pages for run_id in page] == newest_first(runs)


def test_empty_result_is_one_page_without_next_page_token(client):
    assert first_page(client, 5) == {"pipeline_runs": [], "next_page_token": None}


def test_page_size_defaults_to_20(client, auth):
    runs = create_runs(client, auth(), 23)
    body = get_list(client, []).json
    assert [run["id"] for run in body["pipeline_runs"]] == newest_first(runs)[:20]
    assert body["next_page_token"] is not None


@pytest.mark.parametrize("page_size", [1, 100])
def test_page_size_limits_are_accepted(client, auth, page_size):
    runs = create_runs(client, auth(), 2)
    body = first_page(client, page_size)
    assert [run["id"] for run in body["pipeline_runs"]] == newest_first(runs)[:page_size]


def test_filtered_walk_pages_through_matching_runs_only(client, auth):
    a_runs = create_runs(client, auth(), 7, annotations={"team": "a"})
    create_runs(client, auth(), 6, annotations={"team": "b"})
    a_runs += create_runs(client, auth(), 4, annotations={"team": "a"})
    params = query_params(TEAM_A, ["QUEUED"])
    assert walk_pages(client, params, 3) == newest_first(a_runs)


# --- stability while rows change ------------------------------------------------------


def test_runs_created_between_pages_are_not_served_by_the_remaining_walk(client, auth):
    runs = create_runs(client, auth(), 10)
    page = first_page(client, 4)
    newer = create_runs(client, auth(), 3)
    seen = [run["id"] for run in page["pipeline_runs"]]
    rest = walk_pages(client, [], 4, page_token=page["next_page_token"])
    assert seen + rest == newest_first(runs)
    assert not set(rest) & {run["id"] for run in newer}


def test_run_inserted_behind_the_cursor_is_served_by_the_remaining_walk(client, auth, app):
    runs = create_runs(client, auth(), 10)
    page = first_page(client, 4)
    older_id = "0" * 26
    insert_run(app, older_id, datetime(2001, 1, 1, tzinfo=UTC))
    seen = [run["id"] for run in page["pipeline_runs"]]
    rest = walk_pages(client, [], 4, page_token=page["next_page_token"])
    assert seen + rest == [*newest_first(runs), older_id]


def test_runs_leaving_the_filter_between_pages_do_not_make_the_walk_skip_rows(client, auth):
    headers = auth()
    runs = create_runs(client, headers, 9)
    page = first_page(client, 3, statuses=["QUEUED"])
    seen = [run["id"] for run in page["pipeline_runs"]]
    for run_id in seen:
        change_status(client, headers, run_id, "cancel")
    token = page["next_page_token"]
    rest = walk_pages(client, query_params(statuses=["QUEUED"]), 3, page_token=token)
    assert rest == newest_first(runs)[3:]


# --- ties on created_at ---------------------------------------------------------------

TIE_TIME = datetime(2030, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
# Ids are lowercase letters and digits; byte order puts digits before letters.
TIE_IDS = [
    "01hzzzzzzzzzzzzzzzzzzzzzz9",
    "01hzzzzzzzzzzzzzzzzzzzzzza",
    "01hzzzzzzzzzzzzzzzzzzzzzz0",
    "01j00000000000000000000000",
    "01hzzzzzzzzzzzzzzzzzzzzzzz",
    "01h00000000000000000000000",
    "01hzzzzzzzzzzzzzzzzzzzzzyz",
]


def insert_tied_runs(app):
    """Seven runs sharing one created_at, between a newer and an older run."""
    insert_run(app, "00000000000000000000000000", TIE_TIME + timedelta(microseconds=1))
    for run_id in TIE_IDS:
        insert_run(app, run_id, TIE_TIME)
    insert_run(app, "zzzzzzzzzzzzzzzzzzzzzzzzzz", TIE_TIME - timedelta(microseconds=1))
    return [
        "00000000000000000000000000",
        *sorted(TIE_IDS, key=str.encode, reverse=True),
        "zzzzzzzzzzzzzzzzzzzzzzzzzz",
    ]


def test_runs_sharing_created_at_are_ordered_by_id_descending(client, app):
    expected = insert_tied_runs(app)
    body = first_page(client, 100)
    assert [run["id"] for run in body["pipeline_runs"]] == expected


def test_walk_with_cursor_inside_a_created_at_tie_loses_and_repeats_nothing(client, app):
    expected = insert_tied_runs(app)
    for page_size in range(1, len(expected) + 1):
        assert walk_pages(client, [], page_size) == expected, f"page_size={page_size}"


# --- rejected tokens and sizes --------------------------------------------------------


@pytest.fixture
def team_a_token(client, auth):
    create_runs(client, auth(), 3, annotations={"team": "a"})
    token = first_page(client, 2, TEAM_A, ["QUEUED"])["next_page_token"]
    assert token is not None
    return token


def test_page_token_is_accepted_with_the_same_parameters(client, team_a_token):
    params = query_params(TEAM_A, ["QUEUED"], page_size=2, page_token=team_a_token)
    assert len(get_list(client, params).json["pipeline_runs"]) == 1


@pytest.mark.parametrize(
    "filter_query", [TEAM_B, None, '{"and":[{"value_equals":{"key":"team","value":"a"}}]}']
)
def test_page_token_with_another_filter_query_is_400(client, team_a_token, filter_query):
    params = query_params(filter_query, ["QUEUED"], page_size=2, page_token=team_a_token)
    assert_token_rejected(get_list(client, params))


@pytest.mark.parametrize("statuses", [[], ["RUNNING"], ["QUEUED", "RUNNING"]])
def test_page_token_with_other_status_parameters_is_400(client, team_a_token, statuses):
    params = query_params(TEAM_A, statuses, page_size=2, page_token=team_a_token)
    assert_token_rejected(get_list(client, params))


@pytest.mark.parametrize("where", ["payload", "signature"])
def test_tampered_page_token_is_400(client, team_a_token, where):
    payload, _, signature = team_a_token.rpartition(".")
    if where == "payload":
        flipped = payload[:5] + ("A" if payload[5] != "A" else "B") + payload[6:]
        token = f"{flipped}.{signature}"
    else:
        token = f"{payload}.{signature[::-1]}"
    params = query_params(TEAM_A, ["QUEUED"], page_size=2, page_token=token)
    assert_token_rejected(get_list(client, params))


@pytest.mark.parametrize("token", ["garbage", "e30", "a.b.c", "", "x" * 3000])
def test_garbage_page_token_is_400(client, token):
    assert_token_rejected(get_list(client, query_params(page_token=token)))


@pytest.mark.parametrize(
    "payload",
    [
        {"c": "yesterday", "i": "x", "b": None},
        {"c": "2030-01-01T00:00:00", "i": "x", "b": None},
        {"c": 12, "i": "x", "b": None},
        {"i": "x", "b": None},
        ["c", "i", "b"],
    ],
    ids=["not-a-time", "naive-time", "number", "missing-key", "list"],
)
def test_signed_page_token_with_a_malformed_cursor_is_400(client, app, payload):
    """Even a correctly signed token (a leaked key, a future format) never causes a 500."""
    if isinstance(payload, dict):
        payload = {**payload, "b": filter_binding(None, [])}
    serializer = app.extensions["runstats_page_tokens"]._serializer
    token = serializer.dumps(payload)
    assert_token_rejected(get_list(client, query_params(page_token=token)))


@pytest.mark.parametrize("page_size", ["0", "101", "abc", "-1", "1.5", ""])
def test_page_size_out_of_range_or_not_an_integer_is_400(client, page_size):
    body = assert_error_envelope(get_list(client, query_params(page_size=page_size)), 400)
    assert "page_size" in json.dumps(body)
