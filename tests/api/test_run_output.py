"""Runs as the serialiser writes them against runs as the documented schema dumps them.

Every route that answers with a run writes it with runstats_app/runs/serialise.py
(and reads pages and single runs as plain rows); RunSchema and RunListSchema stay
the OpenAPI document and are the oracle here: for random runs (non-ASCII text,
no creator, annotations or none, retries, every lifecycle step) each answer,
parsed, must equal the schema's dump of the run loaded as a model, serialised
the way flask-smorest serialised it before. Page tokens must be the ones the
models' sort keys give, and the OpenAPI document the one main served.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from runstats_app.extensions import db
from runstats_app.models import PipelineRun
from runstats_app.pagination import Cursor, PageTokens, filter_binding
from runstats_app.runs.schemas import RunListSchema, RunSchema

from ..support.api import ADMIN, PROPERTY_SETTINGS, RUNS, Auth, create_run, post_status
from ..support.contract import STATUSES

OPENAPI_OF_MAIN = Path(__file__).parent / "fixtures" / "openapi.json"
TAG_KEY = "output-test"
# Headers that depend on the body's bytes or on the request, not on how it was written.
PER_ANSWER_HEADERS = {"Content-Length", "X-Request-ID"}

labels = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12).filter(
    lambda text: not text.startswith("system/")
)
values = st.text(
    st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from("\t\n\r"), max_size=12
)
actions = st.one_of(
    st.tuples(st.just("transition"), st.sampled_from((*STATUSES, "FAILED", "RUNNING"))),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("annotate"), labels, values),
)


@dataclass(frozen=True)
class RunSpec:
    name: str
    created_by: str | None
    annotations: Mapping[str, str]
    max_attempts: int
    actions: tuple[tuple[str, ...], ...]


run_specs = st.builds(
    RunSpec,
    name=labels,
    created_by=st.none() | labels,
    annotations=st.dictionaries(labels, values, max_size=3),
    max_attempts=st.integers(1, 3),
    actions=st.lists(actions, max_size=4).map(tuple),
)


def schema_dump(
    app: Flask, dump: Callable[[dict[str, PipelineRun]], Any], ids: Sequence[str]
) -> Any:
    """What the documented schema makes of the runs, loaded as models, as JSON parsed back."""
    with app.app_context():
        query = (
            select(PipelineRun)
            .options(selectinload(PipelineRun.annotations))
            .where(PipelineRun.id.in_(list(ids)))
            .execution_options(populate_existing=True)
        )
        runs = {run.id: run for run in db.session().scalars(query)}
        return json.loads(app.json.dumps(dump(runs)))


def one_run(app: Flask, run_id: str) -> Any:
    return schema_dump(app, lambda runs: RunSchema().dump(runs[run_id]), [run_id])


def apply(
    client: FlaskClient, admin: Mapping[str, str], app: Flask, run_id: str, action: Any
) -> None:
    """One change through the API; its answer must be the schema's dump of the changed run."""
    kind, *args = action
    if kind == "annotate":
        key, value = args
        response = client.put(
            f"{RUNS}{run_id}/annotations/{quote(key, safe='')}",
            json={"value": value},
            headers=admin,
        )
    else:
        response = post_status(
            client, admin, run_id, args[0] if kind == "transition" else "cancel"
        )
    if response.status_code == 200:
        assert response.json == one_run(app, run_id)
    else:
        assert response.status_code in (400, 409), response.json


def build(
    client: FlaskClient, admin: Mapping[str, str], app: Flask, tag: str, specs: Sequence[RunSpec]
) -> list[str]:
    ids = []
    for spec in specs:
        response = client.post(
            RUNS,
            json={
                "name": spec.name,
                "created_by": spec.created_by,
                "annotations": {**spec.annotations, TAG_KEY: tag},
                "max_attempts": spec.max_attempts,
            },
            headers=dict(admin),
        )
        assert response.status_code == 201, response.json
        assert response.json == one_run(app, response.json["id"])
        ids.append(response.json["id"])
        for action in spec.actions:
            apply(client, admin, app, response.json["id"], action)
    return ids


def expected_token(app: Flask, last: PipelineRun, filter_query: str) -> str:
    tokens: PageTokens = app.extensions["runstats_page_tokens"]
    return tokens.encode(Cursor(last.created_at, last.id), filter_binding(filter_query, None))


def check_pages(client: FlaskClient, app: Flask, tag: str, page_size: int) -> int:
    """Walk the tagged runs' pages; each must be RunListSchema's dump with the models' token."""
    filter_query = json.dumps({"and": [{"value_equals": {"key": TAG_KEY, "value": tag}}]})
    params = f"filter_query={quote(filter_query)}&page_size={page_size}"
    token, seen = None, 0
    while True:
        response = client.get(f"{RUNS}?{params}" + (f"&page_token={token}" if token else ""))
        assert response.status_code == 200, response.json
        ids = [run["id"] for run in response.json["pipeline_runs"]]
        next_token = response.json["next_page_token"]

        def dump(
            runs: dict[str, PipelineRun], ids: list[str] = ids, next_token: Any = next_token
        ) -> Any:
            return RunListSchema().dump(
                {"pipeline_runs": [runs[i] for i in ids], "next_page_token": next_token}
            )

        assert response.json == schema_dump(app, dump, ids)
        if next_token is not None:
            with app.app_context():
                model = db.session().get(PipelineRun, ids[-1])
                assert model is not None
                assert next_token == expected_token(app, model, filter_query)
        seen += len(ids)
        if next_token is None:
            return seen
        token = next_token


@settings(PROPERTY_SETTINGS, max_examples=25)
@given(specs=st.lists(run_specs, min_size=1, max_size=4), page_size=st.integers(1, 3))
def test_every_answer_is_what_the_documented_schema_dumps(
    app: Flask,
    client: FlaskClient,
    auth: Auth,
    savepoint: Any,
    tag: str,
    specs: list[RunSpec],
    page_size: int,
) -> None:
    admin = auth(*ADMIN)
    with savepoint():
        ids = build(client, admin, app, tag, specs)
        for run_id in ids:
            response = client.get(f"{RUNS}{run_id}")
            assert response.status_code == 200
            assert response.json == one_run(app, run_id)
        assert check_pages(client, app, tag, page_size) == len(ids)


def test_a_run_with_nulls_and_no_annotations_is_dumped_alike(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    run = create_run(client, auth(*ADMIN), created_by=None)
    response = client.get(f"{RUNS}{run['id']}")
    assert response.json == one_run(app, run["id"])
    assert (response.json["created_by"], response.json["annotations"]) == (None, {})


def _headers(response: Any) -> dict[str, str]:
    return {
        name: value for name, value in response.headers.items() if name not in PER_ANSWER_HEADERS
    }


def test_run_answers_carry_the_headers_of_schema_dumped_answers(
    client: FlaskClient, auth: Auth
) -> None:
    run = create_run(client, auth())
    documented = _headers(client.get(f"{RUNS}{run['id']}/history"))
    assert _headers(client.get(f"{RUNS}{run['id']}")) == documented
    assert _headers(client.get(f"{RUNS}?page_size=1")) == documented
    assert _headers(post_status(client, auth(), run["id"], "RUNNING")) == documented


def test_a_run_answer_ends_with_a_newline_as_jsonify_wrote_it(
    client: FlaskClient, auth: Auth
) -> None:
    run = create_run(client, auth())
    assert client.get(f"{RUNS}{run['id']}").data.endswith(b"}\n")


def test_the_openapi_document_is_the_one_main_served(client: FlaskClient) -> None:
    assert client.get("/api/openapi.json").data == OPENAPI_OF_MAIN.read_bytes()
