"""Schema fuzzing: schemathesis drives every operation of the app's OpenAPI document
against the deployed server, gunicorn with gunicorn.conf.py.

Each response must be no 5xx, a documented status code and content type, and
match the documented schema. Going through gunicorn is the point: what it
refuses on its own (a request line over its limit, say) answers outside the
app's document, which an in-process run cannot see. So there is no
in-process run besides this one: it covers the same operations and checks,
on the same backends, with a real Redis beside each server.

Each backend gets a fresh database, an admin token (so that writes are
exercised too) and a pool of seeded runs in several statuses, mixed into the
generated `run_id`s so that transitions, cancels and annotations reach real
rows, not only 404s. `filter_query` is read as `content: application/json`
(`_as_fuzzed`), so the filters drawn are documents of the FilterQuery schema.
CI runs RUNSTATS_FUZZ_EXAMPLES per operation (default 20, about a minute);
`make fuzz` runs 200 or more. The seed is fixed, so a failure reproduces; the
server's log (named in the failure) has its side.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from runstats_app.filters.schema import FilterQueryError, parse_filter_query
from runstats_app.openapi import CONTENT_MEDIA_TYPE, CONTENT_SCHEMA, FILTER_QUERY_EXAMPLE

from .support.app import BACKENDS, PG_URL, make_app
from .support.databases import fresh_database
from .support.servers import GunicornServer, LiveApp, create_token, flask_command
from .support.services import RedisServer

EXAMPLES = int(os.environ.get("RUNSTATS_FUZZ_EXAMPLES", "20"))
SEED = 20260319
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SEEDED_STATUSES = ["QUEUED", "PENDING", "RUNNING", "CANCELLING", "SUCCEEDED"]
RUNS_PER_STATUS = 8
DOCUMENT = "/api/openapi.json"


def _as_json_content(parameter: dict[str, Any]) -> dict[str, Any]:
    """A string parameter holding JSON text, as the same parameter with `content`.

    The document says "JSON text of this schema" with x-contentMediaType and
    x-contentSchema, which client generators read as a plain string; said with
    `content: application/json`, schemathesis draws documents of the schema
    itself (valid filters and near-misses), not random strings.
    """
    schema = parameter.get("schema", {})
    if schema.get(CONTENT_MEDIA_TYPE) != "application/json":
        return parameter
    content = {"schema": schema[CONTENT_SCHEMA]}
    if "example" in parameter:
        content["example"] = json.loads(parameter["example"])
    rest = {key: value for key, value in parameter.items() if key not in ("schema", "example")}
    return {**rest, "content": {"application/json": content}}


def _as_fuzzed(document: dict[str, Any]) -> dict[str, Any]:
    """The document as the fuzzer reads it: JSON-text parameters as JSON content."""
    fuzzed = copy.deepcopy(document)
    for methods in fuzzed["paths"].values():
        for operation in methods.values():
            if isinstance(operation, dict) and "parameters" in operation:
                operation["parameters"] = [_as_json_content(p) for p in operation["parameters"]]
    return fuzzed


def _load_schema() -> Any:
    """The app's own document (serving it needs no database), as the fuzzer reads it."""
    document = make_app("sqlite://").test_client().get(DOCUMENT).get_json()
    config = schemathesis.Config.from_dict(
        {"seed": SEED, "generation": {"max-examples": EXAMPLES}}
    )
    return schemathesis.openapi.from_dict(_as_fuzzed(document), config=config)


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


@dataclass(frozen=True)
class FuzzTarget:
    backend: str
    server: GunicornServer
    headers: dict[str, str]
    run_ids: list[str]
    log: Path


def _seed_runs(live: LiveApp) -> list[str]:
    """Runs in several statuses, with annotations to change, in the same order everywhere."""
    run_ids = []
    for status in SEEDED_STATUSES * RUNS_PER_STATUS:
        run = live.create_run(
            "fuzzer",
            name=f"fuzz-{status.lower()}",
            status="RUNNING" if status == "SUCCEEDED" else status,
            max_attempts=3,
            annotations={"team": "fuzz", "a": "b"},
        )
        if status == "SUCCEEDED":
            live.change_status("fuzzer", run["id"], "SUCCEEDED")
        run_ids.append(run["id"])
    return run_ids


def _start_target(backend: str, tmp_path: Path, stack: ExitStack) -> FuzzTarget:
    """gunicorn on an empty database of its own, with a Redis of its own when one is installed."""
    url = stack.enter_context(fresh_database(backend, tmp_path, PG_URL))
    env = {"RUNSTATS_DATABASE_URL": url, "RUNSTATS_SECRET_KEY": "fuzz"}
    if shutil.which("redis-server"):
        redis_server = RedisServer().start()
        stack.callback(redis_server.stop)
        env["RUNSTATS_REDIS_URL"] = redis_server.url
    flask_command(env, "db", "upgrade")
    tokens = {"fuzzer": create_token(env, "fuzzer", "admin")}
    log = tmp_path / f"gunicorn-{backend}.log"
    server = stack.enter_context(GunicornServer(env, workers=1, log_path=log))
    live = LiveApp(server.url, env, tokens)
    return FuzzTarget(backend, server, live.headers("fuzzer"), _seed_runs(live), log)


@pytest.fixture(scope="module")
def fuzz_targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[FuzzTarget]]:
    """One server per backend; every generated case goes to each, so generating
    (the expensive part) is paid once, whatever the number of backends."""
    tmp_path = tmp_path_factory.mktemp("fuzz")
    with ExitStack() as stack:
        targets = [_start_target(backend, tmp_path, stack) for backend in BACKENDS]
        RUN_POOL[:] = targets[0].run_ids
        yield targets


def test_every_server_serves_the_document_being_fuzzed(fuzz_targets: list[FuzzTarget]) -> None:
    for target in fuzz_targets:
        served = requests.get(f"{target.server.url}{DOCUMENT}", timeout=10)
        assert served.status_code == 200
        assert _as_fuzzed(served.json()) == schema.raw_schema, target.backend


def _call_and_validate(case: schemathesis.Case, target: FuzzTarget) -> None:
    """The case against one target, its seeded run (if it names one) swapped for the
    target's run seeded in the same place."""
    parameters = case.path_parameters or {}
    generated = parameters.get("run_id")
    position = RUN_POOL.index(generated) if generated in RUN_POOL else None
    if position is not None:
        parameters["run_id"] = target.run_ids[position]
    try:
        case.call_and_validate(
            base_url=target.server.url, headers=target.headers, checks=CHECKS, timeout=30
        )
    except Exception as exc:
        exc.add_note(f"on {target.backend}; gunicorn's log: {target.log}")
        raise
    finally:
        if position is not None:
            parameters["run_id"] = generated


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)
def test_every_operation_conforms_to_its_documentation(
    case: schemathesis.Case, fuzz_targets: list[FuzzTarget]
) -> None:
    for target in fuzz_targets:
        _call_and_validate(case, target)


def _a_filter_other_than_the_example(case: schemathesis.Case) -> bool:
    sent = case.as_transport_kwargs(base_url="http://fuzz").get("params", {})
    text = sent.get("filter_query")
    if not isinstance(text, str):
        return False
    try:
        parse_filter_query(text)
    except FilterQueryError:
        return False
    return bool(json.loads(text) != FILTER_QUERY_EXAMPLE)


def test_the_fuzzer_draws_valid_filter_documents_beyond_the_example() -> None:
    # A schema of its own: the fuzzing tests' one carries their hooks and what they learnt.
    operation = _load_schema()["/api/pipeline_runs/"]["GET"]
    hypothesis.find(
        operation.as_strategy(),
        _a_filter_other_than_the_example,
        settings=hypothesis.settings(
            max_examples=200,
            phases=[hypothesis.Phase.generate],
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        ),
    )
