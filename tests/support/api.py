"""Driving the pipeline-runs API in process: create runs, change their status, walk the list."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from werkzeug.test import TestResponse

RUNS = "/api/pipeline_runs/"
UNKNOWN_RUN = "0000000000000000000000nope"
ADMIN = ("root", "admin")
"""The user and role of the tests' administrator."""

Auth = Callable[..., dict[str, str]]
"""The `auth` fixture: Authorization headers for a user (and role)."""

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


def post_run(client: FlaskClient, headers: Mapping[str, str], **body: Any) -> TestResponse:
    """POST a run (named "train" unless `body` names it); the answer, whatever it is."""
    return client.post(RUNS, json={"name": "train", **body}, headers=dict(headers))


def create_run(client: FlaskClient, headers: Mapping[str, str], **body: Any) -> dict[str, Any]:
    """POST a run (named "train" unless `body` names it); the created run."""
    response = post_run(client, headers, **body)
    assert response.status_code == 201, response.get_data(as_text=True)
    created: dict[str, Any] = response.json
    return created


def create_runs(
    client: FlaskClient, headers: Mapping[str, str], count: int, **body: Any
) -> list[dict[str, Any]]:
    """`count` runs named run-0, run-1, … in that order, each with the rest of `body`."""
    return [create_run(client, headers, name=f"run-{index}", **body) for index in range(count)]


def post_status(
    client: FlaskClient, headers: Mapping[str, str], run_id: str, target: str, **body: Any
) -> TestResponse:
    """POST a transition to `target` (with any more of its body), or a cancel when
    target is "cancel"; the answer, whatever it is."""
    if target == "cancel":
        return client.post(f"{RUNS}{run_id}/cancel", headers=dict(headers))
    return client.post(
        f"{RUNS}{run_id}/transitions", json={"status": target, **body}, headers=dict(headers)
    )


def change_status(
    client: FlaskClient, headers: Mapping[str, str], run_id: str, target: str
) -> dict[str, Any]:
    """Transition a run (or cancel it when target is "cancel"); the run afterwards."""
    response = post_status(client, headers, run_id, target)
    assert response.status_code == 200, response.get_data(as_text=True)
    changed: dict[str, Any] = response.json
    return changed


def query_params(
    filter_query: Mapping[str, Any] | str | None = None,
    statuses: Sequence[str] = (),
    *,
    current_user: str | None = None,
    page_size: int | str | None = None,
    page_token: str | None = None,
    ensure_ascii: bool = True,
) -> list[tuple[str, str]]:
    """Query parameters of the list and stats endpoints in a fixed order; `status`
    repeated once per value, a filter_query given as text sent as it is."""
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
    return client.get(f"{RUNS}?{urlencode(params)}", headers=dict(headers or {}))


def list_pages(
    client: FlaskClient,
    params: Sequence[tuple[str, str]],
    page_size: int,
    headers: Mapping[str, str] | None = None,
    page_token: str | None = None,
) -> list[dict[str, Any]]:
    """Every run the list pages through (from `page_token`, if given), checking each
    page's shape on the way.

    A page carries a next_page_token exactly when it is full and more rows
    follow, so a walk never ends on an empty page (unless the result is empty).
    """
    runs: list[dict[str, Any]] = []
    token = page_token
    for page_number in range(10_000):
        page_params = [*params, ("page_size", str(page_size))]
        if token is not None:
            page_params.append(("page_token", token))
        response = get_list(client, page_params, headers)
        assert response.status_code == 200, (page_number, response.get_data(as_text=True))
        body = response.json
        assert body is not None
        rows = body["pipeline_runs"]
        assert len(rows) <= page_size
        if token is not None:
            assert rows, "a next_page_token pointed to an empty page"
        runs.extend(rows)
        token = body["next_page_token"]
        if token is None:
            return runs
        assert len(rows) == page_size, "a short page must be the last one"
    raise AssertionError("the walk did not end")


def walk_pages(
    client: FlaskClient,
    params: Sequence[tuple[str, str]],
    page_size: int,
    headers: Mapping[str, str] | None = None,
    page_token: str | None = None,
) -> list[str]:
    """The ids of `list_pages`, in the order served."""
    return [run["id"] for run in list_pages(client, params, page_size, headers, page_token)]


def list_url_with_request_line(length: int) -> str:
    """A list URL whose GET request line is exactly `length` bytes (its filter_query is
    too long to parse: the app answers 400 when the request reaches it)."""
    prefix = f"{RUNS}?filter_query="
    return prefix + "x" * (length - len(f"GET {prefix} HTTP/1.1"))


def header_with_line(length: int) -> dict[str, str]:
    """A header whose line, `X-Padding: value`, is exactly `length` bytes."""
    return {"X-Padding": "p" * (length - len("X-Padding: "))}
