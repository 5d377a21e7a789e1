"""Security: SQL-looking input is data, tokens never reach the logs, headers on every response."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, text

from runstats_app.auth import hash_token, revoke_token
from runstats_app.extensions import db
from runstats_app.security import HTML_CONTENT_SECURITY_POLICY

from ..support.api import RUNS, Auth, create_run, post_run
from ..support.contract import CREATED_BY, NAME

SQL_LOOKING = [
    "'; DROP TABLE pipeline_runs; --",
    "%' OR 1=1 --",
    '" OR ""="',
    "x' UNION SELECT token_hash, user_name FROM api_tokens --",
    "1); DELETE FROM run_annotations; --",
    "\\'; TRUNCATE run_status_history; --",
    "_%",
]
TABLES = ("pipeline_runs", "run_annotations", "run_status_history", "api_tokens")


def _row_counts(connection: Connection) -> dict[str, int]:
    return {
        table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
        for table in TABLES
    }


def _ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return {run["id"] for run in response.get_json()["pipeline_runs"]}


def _filter(client: FlaskClient, *predicates: Any, **params: Any) -> set[str]:
    raw = json.dumps({"and": list(predicates)})
    return _ids(client.get(RUNS, query_string={"filter_query": raw, **params}))


@pytest.mark.parametrize("evil", SQL_LOOKING)
def test_sql_looking_text_in_every_field_is_stored_and_matched_as_data(
    client: FlaskClient, auth: Auth, connection: Connection, evil: str
) -> None:
    admin = auth("root", "admin")
    plain = create_run(client, admin, name="plain")
    run = create_run(
        client, admin, name=evil, created_by=evil, annotations={evil: evil, "k": evil}
    )
    assert (run["name"], run["created_by"], run["annotations"]) == (
        evil,
        evil,
        {evil: evil, "k": evil},
    )
    changed = client.put(
        f"{RUNS}{run['id']}/annotations/{evil}", json={"value": evil}, headers=admin
    )
    assert changed.status_code == 200, changed.get_json()
    counts = _row_counts(connection)

    # Filter keys and values, every predicate: exactly the run holding the text.
    assert _filter(client, {"value_equals": {"key": NAME, "value": evil}}) == {run["id"]}
    assert _filter(client, {"value_contains": {"key": NAME, "value_substring": evil}}) == {
        run["id"]
    }
    assert _filter(client, {"value_in": {"key": "k", "values": [evil, "zz"]}}) == {run["id"]}
    assert _filter(client, {"key_exists": {"key": evil}}) == {run["id"]}
    assert _filter(client, {"value_equals": {"key": evil, "value": evil}}) == {run["id"]}
    assert _filter(client, {"value_equals": {"key": CREATED_BY, "value": evil}}) == {run["id"]}
    assert _filter(
        client, {"value_equals": {"key": CREATED_BY, "value": "me"}}, current_user=evil
    ) == {run["id"]}
    assert _filter(client, {"not": {"value_equals": {"key": NAME, "value": evil}}}) == {
        plain["id"]
    }
    stats = client.get(
        f"{RUNS}stats",
        query_string={"filter_query": json.dumps({"and": [{"key_exists": {"key": evil}}]})},
    )
    assert stats.get_json()["total_runs"] == 1

    # Ids, page tokens, statuses and tokens are looked up or checked, never spliced in.
    for path in ("", "/history"):
        assert client.get(f"{RUNS}{evil}{path}").status_code == 404
    for path in ("/transitions", "/cancel"):
        answer = client.post(f"{RUNS}{evil}{path}", json={"status": "RUNNING"}, headers=admin)
        assert answer.status_code == 404
    assert client.get(RUNS, query_string={"page_token": evil}).status_code == 400
    assert client.get(RUNS, query_string={"status": evil}).status_code == 400
    assert client.get(RUNS, headers={"Authorization": f"Bearer {evil}"}).status_code == 401
    assert client.delete(f"{RUNS}{run['id']}/annotations/{evil}", headers=admin).status_code == 204

    # Nothing was dropped, deleted or truncated along the way.
    after = _row_counts(connection)
    assert after == {**counts, "run_annotations": counts["run_annotations"] - 1}
    assert _ids(client.get(RUNS)) == {run["id"], plain["id"]}


def test_tokens_never_reach_the_logs(
    app: Flask,
    client: FlaskClient,
    token_for: Callable[[str, str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = token_for("alice", "writer")
    reader = token_for("rita", "reader")
    revoked = token_for("old", "writer")
    with app.app_context():
        assert revoke_token(db.session(), revoked)
        db.session().commit()
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="runstats_app")
    created = client.post(RUNS, json={"name": "x"}, headers={"Authorization": f"Bearer {writer}"})
    assert created.status_code == 201
    run_id = created.get_json()["id"]
    answers = [
        client.get(RUNS, headers={"Authorization": f"Bearer {reader}"}),
        client.post(
            f"{RUNS}{run_id}/transitions",
            json={"status": "SKIPPED"},
            headers={"Authorization": f"Bearer {writer}"},
        ),
        client.post(RUNS, json={"name": "x"}, headers={"Authorization": f"Bearer {reader}"}),
        client.get(RUNS, headers={"Authorization": f"Bearer {revoked}"}),
        client.get(RUNS, headers={"Authorization": f"Bearer {writer}x"}),
        client.get(RUNS, headers={"Authorization": f"Token {writer}"}),
        client.get(f"{RUNS}stats", headers={"Authorization": f"Bearer {writer}"}),
    ]
    assert [a.status_code for a in answers] == [200, 200, 403, 401, 401, 401, 200]
    logged = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    assert "request method=" in logged  # the access log was captured
    for token in (writer, reader, revoked):
        assert token not in logged
        assert token.removeprefix("rst_") not in logged
        assert hash_token(token) not in logged


# --- headers -----------------------------------------------------------------------------------


def _responses(client: FlaskClient, auth: Auth) -> dict[str, Any]:
    run = create_run(client, auth(), name="x")
    return {
        "list": client.get(RUNS),
        "stats": client.get(f"{RUNS}stats"),
        "run": client.get(f"{RUNS}{run['id']}"),
        "created": post_run(client, auth(), name="y"),
        "deleted-204": client.delete(f"{RUNS}{run['id']}/annotations/none", headers=auth()),
        "bad-request": client.get(RUNS, query_string={"nope": "1"}),
        "unauthorized": client.post(RUNS, json={"name": "x"}),
        "not-found": client.get(f"{RUNS}nope"),
        "unknown-url": client.get("/nope"),
        "method-not-allowed": client.delete(RUNS),
        "too-large": client.post(
            RUNS, data="x" * 70_000, headers={**auth(), "Content-Type": "application/json"}
        ),
        "openapi": client.get("/api/openapi.json"),
        "docs": client.get("/api/docs"),
        "docs-script": client.get("/api/docs/static/swagger-init.js"),
        "docs-asset": client.get("/api/docs/assets/swagger-ui.css"),
        "healthz": client.get("/healthz"),
        "readyz": client.get("/readyz"),
        "metrics": client.get("/metrics"),
    }


def test_every_response_carries_the_security_headers(client: FlaskClient, auth: Auth) -> None:
    for name, response in _responses(client, auth).items():
        headers = response.headers
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        assert headers.get("X-Frame-Options") == "DENY", name
        assert headers.get("Referrer-Policy") in ("no-referrer", "same-origin"), name
        policy = headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in policy, name
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, name


def test_json_answers_may_load_nothing(client: FlaskClient, auth: Auth) -> None:
    for name, response in _responses(client, auth).items():
        if response.mimetype == "application/json":
            assert response.headers["Content-Security-Policy"] == (
                "default-src 'none'; frame-ancestors 'none'"
            ), name


def test_docs_page_has_a_strict_policy_and_no_inline_script_or_style(client: FlaskClient) -> None:
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == HTML_CONTENT_SECURITY_POLICY
    assert HTML_CONTENT_SECURITY_POLICY == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    html = response.get_data(as_text=True)
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in html and " style=" not in html and "javascript:" not in html
    assert re.search(r"\son\w+=", html) is None  # no inline event handlers
