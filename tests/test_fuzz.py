"""Schema fuzzing: schemathesis drives every operation of the app's own OpenAPI document.

Each response must be no 5xx, a documented status code and content type, and
match the documented schema. The app runs in process (WSGI) on a database of
its own, with an admin token so that writes are exercised too; a pool of
seeded runs in several statuses is mixed into the generated `run_id`s so that
transitions, cancels and annotations reach real rows, not only 404s.

CI runs a few dozen examples per operation; `make fuzz` runs 200 or more
(RUNSTATS_FUZZ_EXAMPLES). The seed is fixed, so a failure reproduces.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import fakeredis
import hypothesis
import pytest
import schemathesis
from flask import Flask
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from runstats_app.auth import Role, create_token
from runstats_app.extensions import db

from .conftest import BACKENDS, PG_URL, make_app, migrate_to_head
from .servers import fresh_database

EXAMPLES = int(os.environ.get("RUNSTATS_FUZZ_EXAMPLES", "25"))
SEED = 20260319
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SEEDED_STATUSES = ["QUEUED", "PENDING", "RUNNING", "CANCELLING", "SUCCEEDED"]
RUNS_PER_STATUS = 8


def _load_schema() -> Any:
    """The app's own document; serving it needs no database (the fixture binds the real app)."""
    spec_app = make_app("sqlite://")
    config = schemathesis.Config.from_dict(
        {"seed": SEED, "generation": {"max-examples": EXAMPLES}}
    )
    return schemathesis.openapi.from_wsgi("/api/openapi.json", spec_app, config=config)


schema = _load_schema()
RUN_POOL: list[str] = []


def _with_real_run(params: Any, run_id: str) -> Any:
    # Negative cases come wrapped with their mutation metadata: leave them as generated.
    if isinstance(params, dict) and "run_id" in params:
        return {**params, "run_id": run_id}
    return params


@schema.hook
def before_generate_path_parameters(context: Any, strategy: Any) -> Any:
    """Half the positive run_ids are real runs, so transitions get past the 404."""
    real = st.deferred(lambda: st.sampled_from(RUN_POOL))
    return st.one_of(
        strategy,
        strategy.flatmap(lambda params: real.map(lambda run_id: _with_real_run(params, run_id))),
    )


def _seed_runs(app: Flask) -> tuple[str, list[str]]:
    """An admin token, and runs in several statuses with annotations to change."""
    with app.app_context():
        session = db.session()
        token = create_token(session, "fuzzer", Role.admin)
        session.commit()
        db.session.remove()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    run_ids = []
    for status in SEEDED_STATUSES * RUNS_PER_STATUS:
        created = client.post(
            "/api/pipeline_runs/",
            json={
                "name": f"fuzz-{status.lower()}",
                "status": "RUNNING" if status == "SUCCEEDED" else status,
                "max_attempts": 3,
                "annotations": {"team": "fuzz", "a": "b"},
            },
            headers=headers,
        )
        assert created.status_code == 201, created.get_data(as_text=True)
        run_id = created.get_json()["id"]
        if status == "SUCCEEDED":
            done = client.post(
                f"/api/pipeline_runs/{run_id}/transitions",
                json={"status": "SUCCEEDED"},
                headers=headers,
            )
            assert done.status_code == 200
        run_ids.append(run_id)
    return token, run_ids


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Flask, str]]:
    """The app on an empty database of its own (committed writes, no rollback)."""
    with fresh_database(request.param, tmp_path_factory.mktemp("fuzz"), PG_URL) as url:
        app = make_app(url, RUNSTATS_REDIS_CLIENT=fakeredis.FakeRedis())
        with app.app_context():
            migrate_to_head()
        token, run_ids = _seed_runs(app)
        RUN_POOL[:] = run_ids
        yield app, token
        with app.app_context():
            db.engine.dispose()


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)
def test_every_operation_conforms_to_its_documentation(
    case: schemathesis.Case, fuzz_app: tuple[Flask, str]
) -> None:
    app, token = fuzz_app
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, app=app)
