"""The list's floor: the thinnest honest service for runstats' run pages.

A Flask app, served by the same `gunicorn -c gunicorn.conf.py` settings as
runstats, with one psycopg connection per thread (autocommit). A page is one
keyset query for the runs and one `run_id = ANY(...)` query for their
annotations, turned into the same fields and timestamp format and written with
`json.dumps`. It understands exactly the filters the list benchmark sends (none,
created_by = a user + created_at since a time, one annotation's value) and
nothing else: no validation beyond that, no auth, logging, metrics or signed
tokens. Whatever runstats' list costs beyond this is the price of its own work.

    FLOOR_DATABASE_URL=postgresql://postgres@127.0.0.1/runstats_bench \
        gunicorn -c gunicorn.conf.py --workers 4 bench.list_floor_app:app
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
from flask import Flask, Response, request

DATABASE_URL = os.environ.get(
    "FLOOR_DATABASE_URL", "postgresql://postgres@127.0.0.1/runstats_bench"
)
COLUMNS = (
    "id, name, created_by, created_at, updated_at, status, status_updated_at, "
    "started_at, ended_at, attempt, max_attempts"
)
ORDER = "ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
WHERES = {
    "none": "",
    "me_since": "WHERE created_by = %(user)s AND created_at >= %(since)s",
    "annotation": (
        "WHERE EXISTS (SELECT 1 FROM run_annotations a WHERE a.run_id = pipeline_runs.id "
        "AND a.key = %(key)s AND a.value = %(value)s)"
    ),
}
ANNOTATIONS = (
    "SELECT run_id, key, value FROM run_annotations WHERE run_id = ANY(%(ids)s) "
    "ORDER BY run_id, key"
)
ONE_RUN = f"SELECT {COLUMNS} FROM pipeline_runs WHERE id = %(id)s"

app = Flask(__name__)
_local = threading.local()


def _connection() -> psycopg.Connection[Any]:
    connection = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        connection = psycopg.connect(DATABASE_URL, autocommit=True)
        _local.connection = connection
    return connection


def _stamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def _runs(
    connection: psycopg.Connection[Any], rows: list[tuple[Any, ...]]
) -> list[dict[str, Any]]:
    found: dict[str, dict[str, str]] = {row[0]: {} for row in rows}
    if found:
        for run_id, key, value in connection.execute(ANNOTATIONS, {"ids": list(found)}):
            found[run_id][key] = value
    return [
        {
            "id": row[0],
            "name": row[1],
            "created_by": row[2],
            "created_at": _stamp(row[3]),
            "updated_at": _stamp(row[4]),
            "status": row[5],
            "status_updated_at": _stamp(row[6]),
            "started_at": _stamp(row[7]),
            "ended_at": _stamp(row[8]),
            "duration_seconds": ((row[8] - row[7]).total_seconds() if row[7] and row[8] else None),
            "attempt": row[9],
            "max_attempts": row[10],
            "annotations": found[row[0]],
        }
        for row in rows
    ]


def _where(filter_query: str | None, user: str | None) -> tuple[str, dict[str, Any]]:
    if filter_query is None:
        return WHERES["none"], {}
    predicates = json.loads(filter_query)["and"]
    if len(predicates) == 1 and "value_equals" in predicates[0]:
        equals = predicates[0]["value_equals"]
        return WHERES["annotation"], {"key": equals["key"], "value": equals["value"]}
    since = predicates[1]["time_range"]["start_time"]
    return WHERES["me_since"], {"user": user, "since": datetime.fromisoformat(since)}


def _json(document: Any) -> Response:
    return Response(json.dumps(document, separators=(",", ":")), mimetype="application/json")


@app.get("/api/pipeline_runs/")
def list_runs() -> Response:
    page_size = int(request.args.get("page_size", 20))
    where, params = _where(request.args.get("filter_query"), request.args.get("current_user"))
    connection = _connection()
    rows = connection.execute(
        f"SELECT {COLUMNS} FROM pipeline_runs {where} {ORDER}", {**params, "limit": page_size + 1}
    ).fetchall()
    token = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        token = f"{_stamp(rows[-1][3])}|{rows[-1][0]}"
    return _json({"pipeline_runs": _runs(connection, rows), "next_page_token": token})


@app.get("/api/pipeline_runs/<run_id>")
def get_run(run_id: str) -> Response:
    connection = _connection()
    rows = connection.execute(ONE_RUN, {"id": run_id}).fetchall()
    if not rows:
        return Response(b'{"message":"not found"}', status=404, mimetype="application/json")
    return _json(_runs(connection, rows)[0])


@app.get("/healthz")
def healthz() -> Response:
    return Response(b"ok", mimetype="text/plain")
