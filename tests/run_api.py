"""Helpers for driving the pipeline-runs API from tests: create runs, walk the list."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.test import TestResponse

from runstats_app.extensions import db

LIST_URL = "/api/pipeline_runs/"

PROPERTY_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
"""Hypothesis settings for properties checked through the API.

Reproducible (derandomized, no example database), without a deadline (an
example makes requests), and with the function-scoped client fixture allowed:
every example cleans up after itself. Each test sets its own `max_examples`.
"""


class FreshSessionClient(FlaskClient):
    """A test client whose every request ends with its database session closed.

    The `connection` fixture keeps an app context pushed for the whole test, so
    requests reuse it and the app's per-request teardown never runs: one
    session (identity map and open SAVEPOINT included) would otherwise span
    every request of a test. Closing it after each request restores the
    production shape (one session per request) and leaves no SAVEPOINT of the
    app's open when a `savepoint` scope rolls back.
    """

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        try:
            return super().open(*args, **kwargs)
        finally:
            db.session.remove()


ERROR_FIELDS = {"code", "status", "message", "errors"}


def create_run(client: FlaskClient, headers: Mapping[str, str], **body: Any) -> dict[str, Any]:
    """POST a run (name defaults to "run") and return the created run."""
    body.setdefault("name", "run")
    response = client.post(LIST_URL, json=body, headers=dict(headers))
    assert response.status_code == 201, response.get_data(as_text=True)
    created: dict[str, Any] = response.json
    return created


def change_status(
    client: FlaskClient, headers: Mapping[str, str], run_id: str, target: str
) -> dict[str, Any]:
    """Transition a run (or cancel it when target is "cancel"); the run afterwards."""
    url = f"{LIST_URL}{run_id}/" + ("cancel" if target == "cancel" else "transitions")
    body = None if target == "cancel" else {"status": target}
    response = client.post(url, json=body, headers=dict(headers))
    assert response.status_code == 200, response.get_data(as_text=True)
    changed: dict[str, Any] = response.json
    return changed


def list_params(
    filter_query: Mapping[str, Any] | str | None = None,
    statuses: Sequence[str] = (),
    *,
    page_size: int | str | None = None,
    page_token: str | None = None,
    current_user: str | None = None,
    ensure_ascii: bool = True,
) -> list[tuple[str, str]]:
    """Query parameters in a fixed order; `status` repeated once per value."""
    params: list[tuple[str, str]] = []
    if filter_query is not None:
        text = (
            filter_query
            if isinstance(filter_query, str)
            else json.dumps(filter_query, ensure_ascii=ensure_ascii)
        )
        params.append(("filter_query", text))
    params.extend(("status", status) for status in statuses)
    if current_user is not None:
        params.append(("current_user", current_user))
    if page_size is not None:
        params.append(("page_size", str(page_size)))
    if page_token is not None:
        params.append(("page_token", page_token))
    return params


def get_list(
    client: FlaskClient,
    params: Sequence[tuple[str, str]],
    headers: Mapping[str, str] | None = None,
) -> TestResponse:
    return client.get(f"{LIST_URL}?{urlencode(params)}", headers=dict(headers or {}))


def walk_pages(
    client: FlaskClient,
    params: Sequence[tuple[str, str]],
    page_size: int,
    headers: Mapping[str, str] | None = None,
    page_token: str | None = None,
) -> list[str]:
    """Every id the endpoint pages through (from `page_token`, if given), checking
    each page's shape on the way.

    A page carries a next_page_token exactly when it is full and more rows
    follow, so a walk never ends on an empty page (unless the result is empty).
    """
    ids: list[str] = []
    token = page_token
    for page_number in range(10_000):
        page_params = [*params, ("page_size", str(page_size))]
        if token is not None:
            page_params.append(("page_token", token))
        response = get_list(client, page_params, headers)
        assert response.status_code == 200, (page_number, response.json)
        body = response.json
        assert body is not None
        rows = body["pipeline_runs"]
        assert len(rows) <= page_size
        if token is not None:
            assert rows, "a next_page_token pointed to an empty page"
        ids.extend(row["id"] for row in rows)
        token = body["next_page_token"]
        if token is None:
            return ids
        assert len(rows) == page_size, "a short page must be the last one"
    raise AssertionError("the walk did not end")


def assert_error_envelope(response: TestResponse, code: int) -> dict[str, Any]:
    """The one error shape: {code, status, message, errors?}."""
    assert response.status_code == code, response.get_data(as_text=True)
    return assert_error_body(response.json, code)


def assert_error_body(body: Any, code: int) -> dict[str, Any]:
    """An error body in the one shape, for `code`."""
    assert isinstance(body, dict)
    assert set(body) <= ERROR_FIELDS
    assert {"code", "status", "message"} <= set(body)
    assert body["code"] == code
    assert body["status"] == HTTP_STATUS_CODES[code]
    assert isinstance(body["message"], str) and body["message"]
    if "errors" in body:
        assert isinstance(body["errors"], dict)
    return body


def list_url_with_request_line(length: int) -> str:
    """A list URL whose GET request line is exactly `length` bytes (its filter_query is
    too long to parse: the app answers 400 when the request reaches it)."""
    prefix = f"{LIST_URL}?filter_query="
    return prefix + "x" * (length - len(f"GET {prefix} HTTP/1.1"))


def header_with_line(length: int) -> dict[str, str]:
    """A header whose line, `X-Padding: value`, is exactly `length` bytes."""
    return {"X-Padding": "p" * (length - len("X-Padding: "))}


def observed_count(histogram_child: Any) -> float:
    """How many observations a labelled histogram has recorded."""
    return sum(
        sample.value
        for metric in histogram_child.collect()
        for sample in metric.samples
        if sample.name.endswith("_count")
    )
