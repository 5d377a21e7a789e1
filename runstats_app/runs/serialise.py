"""The one run serialiser at run time: a run's columns and annotations to JSON bytes.

Every route that answers with a run (list, get, create, transition, cancel,
annotation set) goes through here; RunSchema stays the documented shape and
the tests' oracle (tests/api/test_run_output.py compares the two). Dumping a
page of runs through marshmallow and Flask's JSON provider cost more than the
queries behind it; here a run is one dict built from a row, and orjson writes
the datetimes itself (UTC, `Z`, microseconds only when there are any: what
timefmt.format_timestamp writes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from flask import Response

from ..models import PipelineRun
from .records import ID, RUN_COLUMNS, Page, RunRecord

_OPTIONS = orjson.OPT_UTC_Z


def run_document(columns: Sequence[Any], annotations: Mapping[str, str]) -> dict[str, Any]:
    """A run as the API shows it, from its RUN_COLUMNS values (aware UTC datetimes)."""
    (
        run_id,
        name,
        created_by,
        created_at,
        updated_at,
        status,
        status_updated_at,
        started_at,
        ended_at,
        attempt,
        max_attempts,
    ) = columns
    return {
        "id": run_id,
        "name": name,
        "created_by": created_by,
        "created_at": created_at,
        "updated_at": updated_at,
        "status": status,
        "status_updated_at": status_updated_at,
        "started_at": started_at,
        "ended_at": ended_at,
        "duration_seconds": _duration(started_at, ended_at),
        "attempt": attempt,
        "max_attempts": max_attempts,
        "annotations": annotations,
    }


def _duration(started_at: datetime | None, ended_at: datetime | None) -> float | None:
    if started_at is None or ended_at is None:
        return None
    return (ended_at - started_at).total_seconds()


def model_document(run: PipelineRun) -> dict[str, Any]:
    """A run loaded as a model (the write paths), annotations loaded."""
    return run_document(
        [getattr(run, name) for name in RUN_COLUMNS],
        {annotation.key: annotation.value for annotation in run.annotations},
    )


def json_response(document: Any, status: int = 200) -> Response:
    """`document` as the JSON body of a response, framed as jsonify frames it (a final
    newline, Content-Type application/json)."""
    return Response(
        orjson.dumps(document, option=_OPTIONS) + b"\n", status, mimetype="application/json"
    )


def run_response(run: PipelineRun, status: int = 200) -> Response:
    return json_response(model_document(run), status)


def record_response(record: RunRecord) -> Response:
    return json_response(run_document(record.columns, record.annotations))


def page_response(page: Page, next_page_token: str | None) -> Response:
    """A list page: its runs in order, each with its annotations, and the next token."""
    annotations = page.annotations
    return json_response(
        {
            "pipeline_runs": [run_document(row, annotations[row[ID]]) for row in page.rows],
            "next_page_token": next_page_token,
        }
    )
