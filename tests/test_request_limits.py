"""The request-head limits (runstats_app/request_limits.py) in front of the app.

What gunicorn lets through is checked live in tests/multiprocess/test_request_size.py;
here, in process, what the layer answers and where it sits.
"""

from __future__ import annotations

import json
import logging
import runpy
from typing import Any

import pytest
from flask.testing import FlaskClient

from runstats_app.metrics import http_request_seconds
from runstats_app.request_limits import (
    GUNICORN_FIELD_SIZE_BACKSTOP,
    MAX_HEADER_LINE,
    MAX_REQUEST_LINE,
    oversized_header,
    request_line_length,
)
from runstats_app.security import JSON_HEADERS

from .support.api import RUNS, header_with_line, list_url_with_request_line
from .support.contract import CREATED_BY
from .support.errors import assert_error_envelope
from .support.metrics import observed_count
from .support.servers import ROOT
from .support.stats import STATS

MINE = {
    "filter_query": json.dumps({"and": [{"value_equals": {"key": CREATED_BY, "value": "me"}}]}),
    "current_user": "alice",
}


def test_a_request_line_of_exactly_the_limit_reaches_the_app(client: FlaskClient) -> None:
    body = assert_error_envelope(client.get(list_url_with_request_line(MAX_REQUEST_LINE)), 400)
    assert "size limit" in body["message"]


def test_a_request_line_over_the_limit_is_414_naming_the_limit(client: FlaskClient) -> None:
    answer = client.get(list_url_with_request_line(MAX_REQUEST_LINE + 1))
    body = assert_error_envelope(answer, 414)
    assert body["message"] == (
        f"The request line is {MAX_REQUEST_LINE + 1} bytes, over the limit of "
        f"{MAX_REQUEST_LINE} bytes (request line limit)."
    )
    assert answer.mimetype == "application/json"


def test_a_refusal_keeps_the_request_id_and_carries_the_security_headers(
    client: FlaskClient,
) -> None:
    answer = client.get(
        list_url_with_request_line(MAX_REQUEST_LINE + 1), headers={"X-Request-ID": "long-1"}
    )
    assert answer.headers["X-Request-ID"] == "long-1"
    assert {name: answer.headers.get(name) for name, _ in JSON_HEADERS} == dict(JSON_HEADERS)


def test_a_refusal_is_logged_and_timed_under_the_route_it_was_for(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="runstats_app.access")
    sample = http_request_seconds.labels(route=RUNS, method="GET", status="414")
    before = observed_count(sample)
    client.get(list_url_with_request_line(MAX_REQUEST_LINE + 1), headers={"X-Request-ID": "l-2"})
    assert observed_count(sample) == before + 1
    lines = [r.getMessage() for r in caplog.records if "request_id=l-2" in r.getMessage()]
    assert len(lines) == 1
    assert f"method=GET route={RUNS} status=414" in lines[0]


def test_a_refusal_for_no_route_is_logged_as_unmatched(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="runstats_app.access")
    answer = client.get("/nowhere/" + "n" * MAX_REQUEST_LINE, headers={"X-Request-ID": "l-3"})
    assert answer.status_code == 414
    lines = [r.getMessage() for r in caplog.records if "request_id=l-3" in r.getMessage()]
    assert "route=unmatched status=414" in lines[0]


def test_a_header_line_of_exactly_the_limit_reaches_the_app(client: FlaskClient) -> None:
    assert client.get(RUNS, headers=header_with_line(MAX_HEADER_LINE)).status_code == 200


def test_a_header_line_over_the_limit_is_431_naming_the_header(client: FlaskClient) -> None:
    answer = client.get(RUNS, headers=header_with_line(MAX_HEADER_LINE + 1))
    body = assert_error_envelope(answer, 431)
    assert body["errors"] == {"headers": {"X-Padding": [f"Longer than {MAX_HEADER_LINE} bytes."]}}
    assert "X-Padding header" in body["message"]
    assert f"limit of {MAX_HEADER_LINE} bytes" in body["message"]


def test_the_limits_sit_ahead_of_the_stats_hit_shortcut(client: FlaskClient) -> None:
    assert client.get(STATS, query_string=MINE).headers["X-Cache"] == "miss"
    assert client.get(STATS, query_string=MINE).headers["X-Cache"] == "hit"
    answer = client.get(STATS, query_string=MINE, headers=header_with_line(MAX_HEADER_LINE + 1))
    assert answer.status_code == 431


def _environ(**items: str) -> dict[str, Any]:
    return {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", **items}


def test_without_a_raw_target_the_request_line_is_measured_from_the_quoted_path() -> None:
    environ = _environ(SCRIPT_NAME="/app", PATH_INFO="/a b", QUERY_STRING="x=1")
    assert request_line_length(environ) == len("GET /app/a%20b?x=1 HTTP/1.1")


def test_content_type_is_measured_as_a_header_line() -> None:
    value = "x" * (MAX_HEADER_LINE - len("Content-Type: ") + 1)
    assert oversized_header(_environ(CONTENT_TYPE=value)) == ("Content-Type", MAX_HEADER_LINE + 1)


def test_long_values_that_are_not_headers_are_not_measured_as_headers() -> None:
    assert oversized_header(_environ(QUERY_STRING="q" * MAX_HEADER_LINE * 2)) is None


def test_every_operation_documents_the_request_head_answers(client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()
    operations = [
        operation
        for path in document["paths"].values()
        for method, operation in path.items()
        if method in {"get", "post", "put", "delete", "patch"}
    ]
    assert operations
    for operation in operations:
        assert operation["responses"]["414"] == {"$ref": "#/components/responses/URITooLong"}
        assert operation["responses"]["431"] == {
            "$ref": "#/components/responses/RequestHeaderFieldsTooLarge"
        }


def test_gunicorn_lets_through_every_request_head_the_app_accepts() -> None:
    """gunicorn's line limit stops at 8190 (0 lifts it); its header limit counts the CRLF."""
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["limit_request_line"] == 0
    assert settings["limit_request_field_size"] == GUNICORN_FIELD_SIZE_BACKSTOP
    assert MAX_HEADER_LINE + len("\r\n") < GUNICORN_FIELD_SIZE_BACKSTOP
