"""Every bad input of the contract is a 400 in the one error envelope, saying what and where."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from ..support.api import RUNS, Auth, create_run, get_list, query_params
from ..support.contract import CREATED_AT, CREATED_BY, NAME, STATUSES, TERMINAL
from ..support.errors import assert_bad_request, assert_names_path, error_keys
from ..support.filter_cases import GRAMMAR_ERRORS, LEAF, MALFORMED_FILTERS, dumps

# --- filter_query grammar ---------------------------------------------------------------


@pytest.mark.parametrize("raw", MALFORMED_FILTERS)
def test_malformed_filter_query_is_400_naming_filter_query(client: FlaskClient, raw: str) -> None:
    body = assert_bad_request(get_list(client, query_params(raw)))
    assert "filter_query" in error_keys(body)


@pytest.mark.parametrize(("document", "path"), GRAMMAR_ERRORS)
def test_grammar_error_is_400_naming_its_json_path(
    client: FlaskClient, document: Any, path: str
) -> None:
    body = assert_bad_request(get_list(client, query_params(dumps(document))))
    assert_names_path(body, path)


def test_grammar_error_message_says_where(client: FlaskClient) -> None:
    document = {
        "and": [LEAF, {"time_range": {"key": CREATED_AT, "start_time": "2026-03-19T12:00:00"}}]
    }
    body = assert_bad_request(get_list(client, query_params(dumps(document))))
    assert "and[1].time_range.start_time" in body["message"]


def test_unknown_system_key_error_names_the_key(client: FlaskClient) -> None:
    document = {"and": [{"key_exists": {"key": "system/pipeline_run.owner"}}]}
    body = assert_bad_request(get_list(client, query_params(dumps(document))))
    assert "system/pipeline_run.owner" in json.dumps(body)


# --- filter_query limits ----------------------------------------------------------------


def test_filter_query_over_8_kib_is_400_naming_the_size_limit(client: FlaskClient) -> None:
    raw = dumps({"and": [{"value_equals": {"key": "team", "value": "x" * 8200}}]})
    body = assert_bad_request(get_list(client, query_params(raw)))
    assert "8192" in body["message"]


def test_filter_nested_deeper_than_16_is_400_naming_the_depth_limit(
    client: FlaskClient,
) -> None:
    predicate: Any = LEAF
    for _ in range(16):  # a leaf under 16 `not`s sits at depth 17
        predicate = {"not": predicate}
    body = assert_bad_request(get_list(client, query_params(dumps({"and": [predicate]}))))
    assert "depth" in body["message"].lower()


def test_filter_nested_16_deep_is_accepted(client: FlaskClient) -> None:
    predicate: Any = LEAF
    for _ in range(15):
        predicate = {"not": predicate}
    assert get_list(client, query_params(dumps({"and": [predicate]}))).status_code == 200


def test_filter_with_more_than_100_predicates_is_400_naming_the_limit(
    client: FlaskClient,
) -> None:
    body = assert_bad_request(get_list(client, query_params(dumps({"and": [LEAF] * 101}))))
    assert "predicate" in body["message"].lower()


def test_value_in_with_more_than_100_items_is_400_naming_the_limit(client: FlaskClient) -> None:
    values = [str(i) for i in range(101)]
    body = assert_bad_request(
        get_list(
            client, query_params(dumps({"and": [{"value_in": {"key": "a", "values": values}}]}))
        )
    )
    assert_names_path(body, "and[0].value_in.values")
    assert "100" in json.dumps(body["errors"])


# --- "me" -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "predicate",
    [
        pytest.param({"value_equals": {"key": CREATED_BY, "value": "me"}}, id="value_equals"),
        pytest.param({"value_in": {"key": CREATED_BY, "values": ["bob", "me"]}}, id="value_in"),
    ],
)
def test_me_without_token_or_current_user_is_400(client: FlaskClient, predicate: Any) -> None:
    body = assert_bad_request(get_list(client, query_params(dumps({"and": [predicate]}))))
    assert '"me"' in body["message"]
    assert "current_user" in error_keys(body) or "current_user" in body["message"]


# --- other query parameters -------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"statuss": "RUNNING"}, id="statuss"),
        pytest.param({"filter": dumps({"and": [LEAF]})}, id="filter"),
        pytest.param({"pagesize": "10"}, id="pagesize"),
        pytest.param({"status": "RUNNING", "created_by": "alice"}, id="created_by"),
    ],
)
def test_unknown_query_parameter_is_400_naming_it(
    client: FlaskClient, query: dict[str, str]
) -> None:
    unknown = next(name for name in query if name != "status")
    body = assert_bad_request(client.get(RUNS, query_string=query))
    assert unknown in body["message"]
    assert unknown in error_keys(body)


@pytest.mark.parametrize(
    "query_string",
    [
        pytest.param("status=DONE", id="unknown"),
        pytest.param("status=running", id="wrong-case"),
        pytest.param("status=RUNNING&status=DONE", id="second-of-two"),
    ],
)
def test_unknown_status_parameter_is_400_naming_the_value(
    client: FlaskClient, query_string: str
) -> None:
    bad = query_string.rpartition("=")[2]
    body = assert_bad_request(client.get(f"{RUNS}?{query_string}"))
    assert repr(bad) in body["message"] or f'"{bad}"' in body["message"]


FILTERED = pytest.mark.parametrize(
    "path", [RUNS, f"{RUNS}stats", f"{RUNS}stats/history"], ids=["list", "stats", "history"]
)


@FILTERED
def test_status_given_more_than_9_times_is_400_naming_the_limit(
    client: FlaskClient, path: str
) -> None:
    query_string = "&".join(f"status={status}" for status in (*STATUSES, "RUNNING"))
    body = assert_bad_request(client.get(f"{path}?{query_string}"))
    assert "more than 9 times (status limit)" in body["message"]
    assert "status" in error_keys(body)


@FILTERED
def test_status_given_9_times_is_accepted(client: FlaskClient, path: str) -> None:
    query_string = "&".join(["status=RUNNING"] * 9)
    assert client.get(f"{path}?{query_string}").status_code == 200


@pytest.mark.parametrize("page_size", ["0", "101", "-1", "ten", "2.5", ""])
def test_bad_page_size_is_400_naming_page_size(client: FlaskClient, page_size: str) -> None:
    body = assert_bad_request(client.get(RUNS, query_string={"page_size": page_size}))
    assert "page_size" in body["message"]


@pytest.mark.parametrize(
    "query_string",
    [
        pytest.param(f"filter_query={dumps({'and': [LEAF]})}&filter_query={{", id="filter_query"),
        pytest.param("page_size=5&page_size=500", id="page_size"),
        pytest.param("current_user=alice&current_user=bob", id="current_user"),
    ],
)
def test_repeated_single_valued_parameter_is_400_naming_it(
    client: FlaskClient, query_string: str
) -> None:
    name = query_string.partition("=")[0]
    body = assert_bad_request(client.get(f"{RUNS}?{query_string}"))
    assert name in body["message"]


@pytest.mark.parametrize(
    "token",
    ["garbage", "", "eyJjIjoiMjAyNi0wMy0xOVQxMjowMDowMFoiLCJpIjoiYSIsImIiOiJ4In0.AAAA"],
    ids=["garbage", "empty", "unsigned"],
)
def test_malformed_page_token_is_400(client: FlaskClient, token: str) -> None:
    body = assert_bad_request(client.get(RUNS, query_string={"page_token": token}))
    assert "page_token" in body["message"] or "page_token" in error_keys(body)


def test_tampered_page_token_is_400(client: FlaskClient, auth: Auth) -> None:
    create_run(client, auth())
    create_run(client, auth())
    token = client.get(RUNS, query_string={"page_size": 1}).get_json()["next_page_token"]
    assert token
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert_bad_request(client.get(RUNS, query_string={"page_size": 1, "page_token": tampered}))


# --- request bodies: create -------------------------------------------------------------

CREATE_ERRORS = [
    pytest.param({}, "name", id="missing-name"),
    pytest.param({"name": ""}, "name", id="empty-name"),
    pytest.param({"name": "n" * 256}, "name", id="name-over-255"),
    pytest.param({"name": 7}, "name", id="name-not-a-string"),
    pytest.param({"name": None}, "name", id="name-null"),
    pytest.param({"name": "x", "max_attempts": 0}, "max_attempts", id="max-attempts-0"),
    pytest.param({"name": "x", "max_attempts": 11}, "max_attempts", id="max-attempts-11"),
    pytest.param({"name": "x", "max_attempts": "3"}, "max_attempts", id="max-attempts-string"),
    pytest.param({"name": "x", "max_attempts": True}, "max_attempts", id="max-attempts-bool"),
    pytest.param({"name": "x", "max_attempts": 2.5}, "max_attempts", id="max-attempts-float"),
    pytest.param({"name": "x", "max_attempts": None}, "max_attempts", id="max-attempts-null"),
    pytest.param({"name": "x", "status": "DONE"}, "status", id="unknown-status"),
    pytest.param(
        {"name": "x", "annotations": {"system/owner": "a"}},
        "annotations",
        id="system-annotation-key",
    ),
    pytest.param(
        {"name": "x", "annotations": {"team": "v" * 256}},
        "annotations",
        id="annotation-value-over-255",
    ),
    pytest.param(
        {"name": "x", "annotations": {"": "v"}}, "annotations", id="empty-annotation-key"
    ),
    pytest.param(
        {"name": "x", "annotations": {"k" * 256: "v"}}, "annotations", id="annotation-key-over-255"
    ),
    pytest.param(
        {"name": "x", "annotations": {"team": 1}},
        "annotations",
        id="annotation-value-not-a-string",
    ),
    pytest.param(
        {"name": "x", "annotations": ["team"]}, "annotations", id="annotations-not-an-object"
    ),
    pytest.param({"name": "x", "created_by": 5}, "created_by", id="created-by-not-a-string"),
    pytest.param({"name": "x", "owner": "alice"}, "owner", id="unknown-field"),
]


@pytest.mark.parametrize(("payload", "field"), CREATE_ERRORS)
def test_bad_create_body_is_400_naming_the_field(
    client: FlaskClient, auth: Auth, payload: dict[str, Any], field: str
) -> None:
    body = assert_bad_request(client.post(RUNS, json=payload, headers=auth()))
    assert field in error_keys(body)


@pytest.mark.parametrize("status", TERMINAL)
def test_create_in_a_terminal_status_is_400(client: FlaskClient, auth: Auth, status: str) -> None:
    body = assert_bad_request(
        client.post(RUNS, json={"name": "x", "status": status}, headers=auth())
    )
    assert "status" in error_keys(body)


def test_rejected_create_stores_nothing(client: FlaskClient, auth: Auth) -> None:
    client.post(RUNS, json={"name": "x", "annotations": {"system/a": "b"}}, headers=auth())
    assert client.get(RUNS).get_json()["pipeline_runs"] == []


# --- request bodies: transitions and annotations ----------------------------------------

TRANSITION_ERRORS = [
    pytest.param({}, "status", id="missing-status"),
    pytest.param({"status": "DONE"}, "status", id="unknown-status"),
    pytest.param({"status": "running"}, "status", id="lowercase-status"),
    pytest.param({"status": None}, "status", id="null-status"),
    pytest.param(
        {"status": "RUNNING", "expected_status": "WAITING"},
        "expected_status",
        id="unknown-expected-status",
    ),
    pytest.param({"status": "RUNNING", "force": True}, "force", id="unknown-field"),
]


@pytest.mark.parametrize(("payload", "field"), TRANSITION_ERRORS)
def test_bad_transition_body_is_400_naming_the_field(
    client: FlaskClient, auth: Auth, payload: dict[str, Any], field: str
) -> None:
    run = create_run(client, auth())
    response = client.post(f"{RUNS}{run['id']}/transitions", json=payload, headers=auth())
    assert field in error_keys(assert_bad_request(response))


def test_bad_transition_changes_nothing(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth())
    client.post(f"{RUNS}{run['id']}/transitions", json={"status": "DONE"}, headers=auth())
    assert client.get(f"{RUNS}{run['id']}").get_json() == run


ANNOTATION_ERRORS = [
    pytest.param({}, "value", id="missing-value"),
    pytest.param({"value": "v" * 256}, "value", id="value-over-255"),
    pytest.param({"value": 3}, "value", id="value-not-a-string"),
    pytest.param({"value": None}, "value", id="value-null"),
    pytest.param({"value": "v", "key": "team"}, "key", id="unknown-field"),
]


@pytest.mark.parametrize(("payload", "field"), ANNOTATION_ERRORS)
def test_bad_annotation_body_is_400_naming_the_field(
    client: FlaskClient, auth: Auth, payload: dict[str, Any], field: str
) -> None:
    run = create_run(client, auth())
    response = client.put(f"{RUNS}{run['id']}/annotations/team", json=payload, headers=auth())
    assert field in error_keys(assert_bad_request(response))


@pytest.mark.parametrize("key", ["system/owner", "system/pipeline_run.name"])
def test_annotation_put_with_system_key_is_400(client: FlaskClient, auth: Auth, key: str) -> None:
    run = create_run(client, auth())
    response = client.put(
        f"{RUNS}{run['id']}/annotations/{key}", json={"value": "v"}, headers=auth()
    )
    assert_bad_request(response)
    assert client.get(f"{RUNS}{run['id']}").get_json()["annotations"] == {}


def test_annotation_put_with_key_over_255_is_400(client: FlaskClient, auth: Auth) -> None:
    run = create_run(client, auth())
    response = client.put(
        f"{RUNS}{run['id']}/annotations/{'k' * 256}", json={"value": "v"}, headers=auth()
    )
    assert_bad_request(response)


# --- bodies that are not JSON objects ---------------------------------------------------

WRITES = [
    pytest.param("POST", "", id="create"),
    pytest.param("POST", "{id}/transitions", id="transition"),
    pytest.param("PUT", "{id}/annotations/team", id="annotation"),
]
NOT_JSON = [
    pytest.param("{", "application/json", id="malformed-json"),
    pytest.param('{"name": "x",}', "application/json", id="trailing-comma"),
    pytest.param("", "application/json", id="empty-body"),
    pytest.param(
        "name=x&status=RUNNING&value=v", "application/x-www-form-urlencoded", id="form-encoded"
    ),
    pytest.param("[]", "application/json", id="json-list"),
    pytest.param('"RUNNING"', "application/json", id="json-string"),
]


@pytest.mark.parametrize(("data", "content_type"), NOT_JSON)
@pytest.mark.parametrize(("method", "path"), WRITES)
def test_write_with_a_body_that_is_not_a_json_object_is_400(
    client: FlaskClient, auth: Auth, method: str, path: str, data: str, content_type: str
) -> None:
    run = create_run(client, auth())
    response = client.open(
        RUNS + path.format(id=run["id"]),
        method=method,
        data=data,
        headers={**auth(), "Content-Type": content_type},
    )
    assert_bad_request(response)


# --- text no database can hold: NUL and unpaired surrogates -----------------------------

UNSTORABLE = [pytest.param("a\x00b", id="nul"), pytest.param("a\ud800b", id="surrogate")]


@pytest.mark.parametrize("text", UNSTORABLE)
@pytest.mark.parametrize(
    ("make", "path"),
    [
        pytest.param(
            lambda t: {"value_equals": {"key": "team", "value": t}},
            "and[0].value_equals.value",
            id="value",
        ),
        pytest.param(lambda t: {"key_exists": {"key": t}}, "and[0].key_exists.key", id="key"),
        pytest.param(
            lambda t: {"value_contains": {"key": NAME, "value_substring": t}},
            "and[0].value_contains.value_substring",
            id="substring",
        ),
        pytest.param(
            lambda t: {"value_in": {"key": CREATED_BY, "values": ["x", t]}},
            "and[0].value_in.values[1]",
            id="values-item",
        ),
    ],
)
def test_filter_text_no_database_can_hold_is_400(
    client: FlaskClient, text: str, make: Callable[[str], Any], path: str
) -> None:
    raw = json.dumps({"and": [make(text)]})  # ASCII escapes: \u0000, \ud800
    assert_names_path(assert_bad_request(get_list(client, query_params(raw))), path)


def test_current_user_with_a_nul_is_400(client: FlaskClient) -> None:
    raw = dumps({"and": [{"value_equals": {"key": CREATED_BY, "value": "me"}}]})
    body = assert_bad_request(get_list(client, query_params(raw, current_user="a\x00b")))
    assert "current_user" in error_keys(body)


@pytest.mark.parametrize("text", UNSTORABLE)
@pytest.mark.parametrize(
    ("make", "field"),
    [
        pytest.param(lambda t: {"name": t}, "name", id="name"),
        pytest.param(lambda t: {"name": "x", "created_by": t}, "created_by", id="created_by"),
        pytest.param(
            lambda t: {"name": "x", "annotations": {t: "v"}}, "annotations", id="annotation-key"
        ),
        pytest.param(
            lambda t: {"name": "x", "annotations": {"k": t}}, "annotations", id="annotation-value"
        ),
    ],
)
def test_create_with_text_no_database_can_hold_is_400(
    client: FlaskClient, auth: Auth, text: str, make: Callable[[str], Any], field: str
) -> None:
    body = assert_bad_request(client.post(RUNS, json=make(text), headers=auth("root", "admin")))
    assert field in error_keys(body)


@pytest.mark.parametrize("text", UNSTORABLE)
def test_annotation_value_no_database_can_hold_is_400(
    client: FlaskClient, auth: Auth, text: str
) -> None:
    run = create_run(client, auth())
    response = client.put(
        f"{RUNS}{run['id']}/annotations/team", json={"value": text}, headers=auth()
    )
    assert "value" in error_keys(assert_bad_request(response))


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_annotation_key_with_a_nul_is_400(client: FlaskClient, auth: Auth, method: str) -> None:
    run = create_run(client, auth())
    response = client.open(
        f"{RUNS}{run['id']}/annotations/a%00b",
        method=method,
        json={"value": "v"} if method == "PUT" else None,
        headers=auth(),
    )
    assert_bad_request(response)


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("GET", "/history", None),
        ("POST", "/transitions", {"status": "RUNNING"}),
        ("POST", "/cancel", None),
        ("PUT", "/annotations/team", {"value": "v"}),
    ],
    ids=["get", "history", "transition", "cancel", "annotate"],
)
def test_run_id_with_a_nul_is_404(
    client: FlaskClient, auth: Auth, method: str, suffix: str, body: Any
) -> None:
    response = client.open(f"{RUNS}a%00b{suffix}", method=method, json=body, headers=auth())
    assert response.status_code == 404
    assert response.get_json()["code"] == 404
