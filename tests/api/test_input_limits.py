"""Input limits: strict JSON bodies, body size, control characters, out-of-range values.

Each is a clear answer in the one error envelope that says which rule was
broken, never a 500 or a slow query.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from runstats_app.runs.schemas import MAX_ANNOTATIONS_PER_RUN

from ..support.api import RUNS, Auth, create_run, get_list, query_params
from ..support.contract import CREATED_AT
from ..support.errors import assert_bad_request, error_keys

JSON = {"Content-Type": "application/json"}


def send(client: FlaskClient, auth: Auth, target: str, raw: str | bytes) -> TestResponse:
    """POST/PUT a raw body to create, transition or annotate (a run of alice's)."""
    if target == "create":
        return client.post(RUNS, data=raw, headers={**auth(), **JSON})
    run = create_run(client, auth())
    if target == "transition":
        return client.post(f"{RUNS}{run['id']}/transitions", data=raw, headers={**auth(), **JSON})
    return client.put(f"{RUNS}{run['id']}/annotations/team", data=raw, headers={**auth(), **JSON})


TARGETS = ["create", "transition", "annotation"]
GOOD_BODY = {
    "create": '{"name": "x", "max_attempts": 2}',
    "transition": '{"status": "RUNNING"}',
    "annotation": '{"value": "v"}',
}


def _with(target: str, fragment: str) -> str:
    """The target's good body with one more member (raw JSON text)."""
    return GOOD_BODY[target][:-1] + ", " + fragment + "}"


# --- strict JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_duplicate_key_in_a_body_is_400_naming_the_key(
    client: FlaskClient, auth: Auth, target: str
) -> None:
    first_key = GOOD_BODY[target].split('"')[1]
    body = assert_bad_request(send(client, auth, target, _with(target, f'"{first_key}": "y"')))
    assert f"duplicate key '{first_key}'" in body["message"]
    assert "json" in error_keys(body)


def test_duplicate_key_in_a_nested_object_is_400(client: FlaskClient, auth: Auth) -> None:
    raw = '{"name": "x", "annotations": {"team": "a", "team": "b"}}'
    body = assert_bad_request(send(client, auth, "create", raw))
    assert "duplicate key 'team'" in body["message"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("target", TARGETS)
def test_nan_and_infinity_in_a_body_are_400(
    client: FlaskClient, auth: Auth, target: str, constant: str
) -> None:
    body = assert_bad_request(send(client, auth, target, _with(target, f'"extra": {constant}')))
    assert "is not valid JSON" in body["message"]


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("9223372036854775808", id="2**63"),
        pytest.param("-9223372036854775809", id="-2**63-1"),
        pytest.param("1" + "0" * 30, id="31-digits"),
        pytest.param("1" + "0" * 5000, id="5001-digits"),
    ],
)
def test_integer_beyond_64_bits_is_400_naming_the_limit(
    client: FlaskClient, auth: Auth, number: str
) -> None:
    body = assert_bad_request(
        send(client, auth, "create", f'{{"name": "x", "max_attempts": {number}}}')
    )
    assert "out of range (limit: signed 64-bit)" in body["message"]


def test_integer_within_64_bits_reaches_the_field_check(client: FlaskClient, auth: Auth) -> None:
    body = assert_bad_request(
        send(client, auth, "create", '{"name": "x", "max_attempts": 9223372036854775807}')
    )
    assert "max_attempts" in error_keys(body)


def test_number_overflowing_a_float_is_400(client: FlaskClient, auth: Auth) -> None:
    body = assert_bad_request(send(client, auth, "create", '{"name": "x", "max_attempts": 1e400}'))
    assert "too large" in body["message"]


def test_body_nested_thousands_deep_is_400(client: FlaskClient, auth: Auth) -> None:
    raw = '{"name": "x", "annotations": ' + "[" * 20000 + "]" * 20000 + "}"
    body = assert_bad_request(send(client, auth, "create", raw))
    assert "nested too deeply" in body["message"]


def test_body_that_is_not_utf8_is_400_saying_so(client: FlaskClient, auth: Auth) -> None:
    body = assert_bad_request(send(client, auth, "create", b'{"name": "caf\xe9"}'))
    assert "not valid UTF-8" in body["message"]


def test_json_body_sent_as_another_media_type_is_400_saying_so(
    client: FlaskClient, auth: Auth
) -> None:
    response = client.post(
        RUNS, data='{"name": "x"}', headers={**auth(), "Content-Type": "text/plain"}
    )
    body = assert_bad_request(response)
    assert "application/json" in body["message"]


# --- body size -------------------------------------------------------------------------------


def test_body_over_the_size_limit_is_413_in_the_envelope_naming_the_limit(
    client: FlaskClient, auth: Auth
) -> None:
    limit = client.application.config["MAX_CONTENT_LENGTH"]
    raw = json.dumps({"name": "x", "annotations": {"k": "v" * limit}})
    response = client.post(RUNS, data=raw, headers={**auth(), **JSON})
    assert response.status_code == 413
    body = response.get_json()
    assert body["code"] == 413 and body["status"] == "Request Entity Too Large"
    assert f"limit of {limit} bytes" in body["message"]


def test_body_just_under_the_size_limit_is_read(client: FlaskClient, auth: Auth) -> None:
    limit = client.application.config["MAX_CONTENT_LENGTH"]
    raw = '{"name": "x"' + " " * (limit - 14) + "}"
    assert len(raw.encode()) == limit - 1
    assert client.post(RUNS, data=raw, headers={**auth(), **JSON}).status_code == 201


def test_more_annotations_than_the_limit_is_400_naming_it(client: FlaskClient, auth: Auth) -> None:
    annotations = {f"k{i}": "v" for i in range(MAX_ANNOTATIONS_PER_RUN + 1)}
    response = client.post(RUNS, json={"name": "x", "annotations": annotations}, headers=auth())
    body = assert_bad_request(response)
    assert f"At most {MAX_ANNOTATIONS_PER_RUN} annotations" in body["message"]


def test_setting_one_annotation_past_the_limit_is_400(client: FlaskClient, auth: Auth) -> None:
    annotations = {f"k{i}": "v" for i in range(MAX_ANNOTATIONS_PER_RUN)}
    run = create_run(client, auth(), annotations=annotations)
    response = client.put(
        f"{RUNS}{run['id']}/annotations/one-more", json={"value": "v"}, headers=auth()
    )
    assert (
        f"at most {MAX_ANNOTATIONS_PER_RUN} annotations" in assert_bad_request(response)["message"]
    )


# --- control characters ---------------------------------------------------------------------
# Labels (names, users, keys) take none; values may hold tab, line feed and carriage return.

CONTROL = [
    pytest.param("a\x01b", id="C0"),
    pytest.param("a\x1bb", id="escape"),
    pytest.param("a\x7fb", id="DEL"),
    pytest.param("a\x85b", id="C1"),
]
LABEL_ONLY = [pytest.param("a\tb", id="tab"), pytest.param("a\nb", id="newline")]


@pytest.mark.parametrize("text", CONTROL + LABEL_ONLY)
@pytest.mark.parametrize("field", ["name", "created_by", "annotation-key"])
def test_label_with_a_control_character_is_400(
    client: FlaskClient, auth: Auth, field: str, text: str
) -> None:
    body: dict[str, Any] = {"name": "x"}
    if field == "annotation-key":
        body["annotations"] = {text: "v"}
    else:
        body[field] = text
    response = client.post(RUNS, json=body, headers=auth("root", "admin"))
    assert "control characters" in assert_bad_request(response)["message"]


@pytest.mark.parametrize("text", CONTROL)
def test_annotation_value_with_a_control_character_is_400(
    client: FlaskClient, auth: Auth, text: str
) -> None:
    response = client.post(RUNS, json={"name": "x", "annotations": {"k": text}}, headers=auth())
    assert "control characters" in assert_bad_request(response)["message"]


def test_annotation_value_may_hold_tab_newline_and_carriage_return(
    client: FlaskClient, auth: Auth
) -> None:
    run = create_run(client, auth(), annotations={"note": "line 1\r\n\tline 2"})
    assert run["annotations"] == {"note": "line 1\r\n\tline 2"}


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_annotation_key_in_the_path_with_a_control_character_is_400(
    client: FlaskClient, auth: Auth, method: str
) -> None:
    run = create_run(client, auth())
    response = client.open(
        f"{RUNS}{run['id']}/annotations/a%07b",
        method=method,
        json={"value": "v"},
        headers=auth(),
    )
    assert "control characters" in assert_bad_request(response)["message"]


@pytest.mark.parametrize("text", CONTROL)
def test_current_user_with_a_control_character_is_400(client: FlaskClient, text: str) -> None:
    body = assert_bad_request(client.get(RUNS, query_string={"current_user": text}))
    assert "current_user" in error_keys(body)


@pytest.mark.parametrize("text", CONTROL)
@pytest.mark.parametrize(
    ("make", "path"),
    [
        pytest.param(lambda t: {"key_exists": {"key": t}}, "and[0].key_exists.key", id="key"),
        pytest.param(
            lambda t: {"value_equals": {"key": "k", "value": t}},
            "and[0].value_equals.value",
            id="value",
        ),
    ],
)
def test_filter_text_with_a_control_character_is_400_naming_its_path(
    client: FlaskClient, text: str, make: Callable[[str], Any], path: str
) -> None:
    body = assert_bad_request(get_list(client, query_params(json.dumps({"and": [make(text)]}))))
    assert path in error_keys(body)


# --- timestamps at the edge of the representable (found by schema fuzzing) ------------------


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param("9999-12-31T23:59:59-23:59", id="after-9999-in-UTC"),
        pytest.param("0001-01-01T00:00:00+01:00", id="before-year-1-in-UTC"),
        pytest.param("9999-12-31T23:59:59.9999999Z", id="rounds-up-past-the-last-instant"),
    ],
)
def test_time_range_bound_outside_the_representable_is_400(
    client: FlaskClient, moment: str
) -> None:
    raw = json.dumps(
        {
            "and": [
                {
                    "time_range": {
                        "key": CREATED_AT,
                        "start_time": moment,
                    }
                }
            ]
        }
    )
    body = assert_bad_request(get_list(client, query_params(raw)))
    assert "and[0].time_range.start_time" in error_keys(body)
    assert "Out of range" in body["message"]


def test_filter_query_with_an_integer_beyond_64_bits_is_400(client: FlaskClient) -> None:
    raw = '{"and": [{"value_equals": {"key": "k", "value": ' + "9" * 5000 + "}}]}"
    body = assert_bad_request(get_list(client, query_params(raw)))
    assert "out of range" in body["message"]
