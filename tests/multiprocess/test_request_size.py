"""Long filter_query requests through gunicorn (gunicorn.conf.py), as deployed.

Filters of 2, 4 and 8 KiB of JSON, whose URL-encoding triples most of their
bytes, make request lines of about 6 to 24 KiB: past gunicorn's default
limit (4094) and past the most it can be set to (8190). They must list and
count exactly what the one-predicate filter they are equivalent to does.
What is over a limit is refused in the error envelope without reaching the
database, which the database itself confirms: on PostgreSQL by counting
statements (pg_stat_statements, on a cluster of the test's own), on SQLite
by moving every table away while the request is answered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from runstats_app.filters.schema import MAX_FILTER_BYTES
from runstats_app.request_limits import MAX_HEADER_LINE, MAX_REQUEST_LINE
from runstats_app.security import JSON_HEADERS

from ..support.api import RUNS, header_with_line, list_url_with_request_line
from ..support.app import BACKENDS
from ..support.contract import STATUSES
from ..support.databases import fresh_database
from ..support.errors import assert_error_body
from ..support.filter_cases import dumps
from ..support.filter_oracle import newest_first
from ..support.probes import DatabaseProbe, StatementCount, TablesAway
from ..support.servers import GunicornServer, LiveApp, create_token, flask_command
from ..support.services import TemporaryPostgres
from ..support.stats import STATS

pytestmark = pytest.mark.multiprocess

KEY = "probe/€&=?"
MATCH = "wanted«€»"
PLAIN = dumps({"and": [{"value_equals": {"key": KEY, "value": MATCH}}]})
DECOYS_PER_GROUP = 25


def _decoy(number: int) -> str:
    return f'«{number}»€ü&=?#%+/"{{}}[]éß'


def _document(decoys: list[str]) -> dict[str, Any]:
    """PLAIN's predicate or'ed with predicates over decoys, in groups of one
    value_equals and a value_in of the rest."""
    alternatives: list[dict[str, Any]] = [{"value_equals": {"key": KEY, "value": MATCH}}]
    for start in range(0, len(decoys), DECOYS_PER_GROUP):
        first, *rest = decoys[start : start + DECOYS_PER_GROUP]
        alternatives.append({"value_equals": {"key": KEY, "value": first}})
        if rest:
            alternatives.append({"value_in": {"key": KEY, "values": rest}})
    return {"and": [{"or": alternatives}]}


def long_filter(size: int) -> str:
    """filter_query text of exactly `size` bytes matching exactly what PLAIN matches:
    no run carries a decoy, and the last one is padded to the size."""
    decoys: list[str] = []
    while len(dumps(_document([*decoys, _decoy(len(decoys))])).encode()) <= size:
        decoys.append(_decoy(len(decoys)))
    text = dumps(_document(decoys))
    decoys[-1] += "x" * (size - len(text.encode()))
    text = dumps(_document(decoys))
    assert len(text.encode()) == size
    return text


def request_line(url: str, params: dict[str, str]) -> int:
    prepared = requests.Request("GET", url, params=params).prepare()
    return len(f"GET {prepared.path_url} HTTP/1.1")


@dataclass
class Stack:
    url: str
    probe: DatabaseProbe
    matching: list[dict[str, Any]]

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(f"{self.url}{path}", timeout=30, **kwargs)


def _seed(live: LiveApp) -> list[dict[str, Any]]:
    """Runs the filters match, in several statuses, among runs they do not."""
    matching = []
    for index, status in enumerate(["QUEUED", "PENDING", "RUNNING", "RUNNING", "QUEUED"]):
        name = "train" if index % 2 else "eval"
        matching.append(
            live.create_run("alice", name=name, status=status, annotations={KEY: MATCH})
        )
        live.create_run("alice", name=name, status=status, annotations={KEY: "unwanted"})
        live.create_run("alice", name=name, status=status)
    for run, target in ((matching[2], "SUCCEEDED"), (matching[3], "FAILED")):
        run.update(live.change_status("alice", run["id"], target))
    return matching


@pytest.fixture(scope="module", params=BACKENDS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp_path = tmp_path_factory.mktemp("request-size")
    with ExitStack() as resources:
        probe: DatabaseProbe
        if request.param == "postgresql":
            postgres = TemporaryPostgres().start()
            resources.callback(postgres.destroy)
            url = postgres.create_database()
            counter = StatementCount(url)
            resources.callback(counter.close)
            probe = counter
        else:
            url = resources.enter_context(fresh_database("sqlite", tmp_path, None))
            probe = TablesAway(url)
        env = {"RUNSTATS_DATABASE_URL": url, "RUNSTATS_SECRET_KEY": "request-size"}
        flask_command(env, "db", "upgrade")
        tokens = {"alice": create_token(env, "alice", "writer")}
        server = resources.enter_context(
            GunicornServer(env, workers=2, log_path=tmp_path / "gunicorn.log")
        )
        yield Stack(server.url, probe, _seed(LiveApp(server.url, env, tokens)))


def _walk(stack: Stack, filter_query: str, page_size: int) -> list[str]:
    ids: list[str] = []
    params = {"filter_query": filter_query, "page_size": str(page_size)}
    while True:
        page = stack.get(RUNS, params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        ids.extend(run["id"] for run in body["pipeline_runs"])
        if body["next_page_token"] is None:
            return ids
        params["page_token"] = body["next_page_token"]


SIZES = [pytest.param(kib * 1024, id=f"{kib}KiB") for kib in (2, 4, 8)]


@pytest.mark.parametrize("size", SIZES)
def test_a_long_filter_nearly_triples_in_the_request_line(size: int) -> None:
    """So 2 KiB is past gunicorn's default line limit, 4 and 8 KiB past its maximum."""
    line = request_line(f"http://127.0.0.1{RUNS}", {"filter_query": long_filter(size)})
    assert 2.7 * size < line <= MAX_REQUEST_LINE


@pytest.mark.parametrize("size", SIZES)
def test_a_long_filter_lists_what_the_plain_filter_lists(stack: Stack, size: int) -> None:
    page_size = 2
    listed = _walk(stack, long_filter(size), page_size)
    assert listed == _walk(stack, PLAIN, page_size) == newest_first(stack.matching)


@pytest.mark.parametrize("size", SIZES)
def test_a_long_filter_counts_what_the_plain_filter_counts(stack: Stack, size: int) -> None:
    long, plain = (
        stack.get(STATS, params={"filter_query": text}) for text in (long_filter(size), PLAIN)
    )
    assert long.status_code == plain.status_code == 200, long.text
    expected = Counter(run["status"] for run in stack.matching)
    counts = {status: expected.get(status, 0) for status in STATUSES}
    for answer in (long.json(), plain.json()):
        assert answer["counts_by_status"] == counts
        assert answer["total_runs"] == len(stack.matching)


def test_a_legal_long_filter_is_seen_reaching_the_database(stack: Stack) -> None:
    """The probe can tell: without this, the two tests below could not fail."""
    params = {"filter_query": long_filter(MAX_FILTER_BYTES)}
    _, reached = stack.probe.reached(lambda: stack.get(RUNS, params=params))
    assert reached


def test_a_9_kib_filter_is_400_naming_the_limit_before_any_query(stack: Stack) -> None:
    params = {"filter_query": long_filter(9 * 1024)}
    assert request_line(f"{stack.url}{RUNS}", params) <= MAX_REQUEST_LINE
    answer, reached = stack.probe.reached(lambda: stack.get(RUNS, params=params))
    assert answer.status_code == 400, answer.text
    body = assert_error_body(answer.json(), 400)
    assert f"{MAX_FILTER_BYTES} bytes (size limit)" in body["message"]
    assert "filter_query" in body["errors"]["query"]
    assert not reached


def test_a_40_kib_request_line_is_414_in_the_envelope_before_any_query(stack: Stack) -> None:
    params = {"filter_query": long_filter(15000)}
    assert 40 * 1024 <= request_line(f"{stack.url}{RUNS}", params) < 41 * 1024
    answer, reached = stack.probe.reached(
        lambda: stack.get(RUNS, params=params, headers={"X-Request-ID": "too-long-1"})
    )
    assert answer.status_code == 414, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    body = assert_error_body(answer.json(), 414)
    assert f"limit of {MAX_REQUEST_LINE} bytes" in body["message"]
    assert answer.headers["X-Request-ID"] == "too-long-1"
    assert {name: answer.headers.get(name) for name, _ in JSON_HEADERS} == dict(JSON_HEADERS)
    assert not reached


def test_a_request_line_of_exactly_32_kib_is_answered_by_the_app(stack: Stack) -> None:
    answer = stack.get(list_url_with_request_line(MAX_REQUEST_LINE))
    body = assert_error_body(answer.json(), 400)
    assert "size limit" in body["message"]


def test_a_request_line_one_byte_over_32_kib_is_414_in_the_envelope(stack: Stack) -> None:
    answer = stack.get(list_url_with_request_line(MAX_REQUEST_LINE + 1))
    assert answer.status_code == 414
    assert_error_body(answer.json(), 414)


def test_a_header_line_of_exactly_32_kib_is_answered_by_the_app(stack: Stack) -> None:
    answer = stack.get(RUNS, headers=header_with_line(MAX_HEADER_LINE))
    assert answer.status_code == 200, answer.text


def test_a_header_line_one_byte_over_32_kib_is_431_in_the_envelope(stack: Stack) -> None:
    answer = stack.get(RUNS, headers=header_with_line(MAX_HEADER_LINE + 1))
    assert answer.status_code == 431, answer.text
    body = assert_error_body(answer.json(), 431)
    assert set(body["errors"]["headers"]) == {"X-Padding"}


def test_the_probe_sees_a_request_that_reaches_the_database(stack: Stack) -> None:
    """So that "before any query" above can fail: a legal filter is answered by a query."""
    params = {"filter_query": long_filter(2 * 1024)}
    _, reached = stack.probe.reached(lambda: stack.get(RUNS, params=params))
    assert reached
