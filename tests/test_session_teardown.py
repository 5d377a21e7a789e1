"""A connection that dies after the answer was made does not turn the answer into a 500.

Found under load (tests/multiprocess/test_faults.py): PostgreSQL restarted between
a list's query and the end of the request, the ROLLBACK at teardown raised, and
gunicorn answered its own HTML 500 instead of the list.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from runstats_app.extensions import db


def test_a_failed_rollback_at_teardown_keeps_the_answer(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = db.session.remove
    calls: list[int] = []

    def remove_once_failing() -> None:
        calls.append(1)
        if len(calls) == 1:
            original()
            raise OperationalError("ROLLBACK", {}, Exception("server closed the connection"))
        original()

    monkeypatch.setattr(db.session, "remove", remove_once_failing)
    response = client.get("/api/pipeline_runs/")
    assert response.status_code == 200
    assert response.get_json() == {"pipeline_runs": [], "next_page_token": None}
    follow_up: Any = client.get("/api/pipeline_runs/")
    assert follow_up.status_code == 200
