"""Faults under load: mixed traffic through 4 gunicorn workers while the neighbours fail.

Clients list runs, read stats and move runs through their lifecycle with
compare-and-set transitions, while (a) Redis goes down, hangs and is restarted,
(b) PostgreSQL is restarted, and (c) the worker holding a stats lease is
SIGKILLed. Afterwards every run's history is exactly the transitions its
client was told succeeded (plus, at most, ones whose answer never arrived or
was a 503), no list or stats answer was a 500, a 503 (with Retry-After) came
only while the database was down (or, for stats, when a scan was not admitted),
the only connection errors are requests in the killed worker, and the service
answers normally again without a restart.

To kill a lease holder mid-aggregate the test locks the runs table for a second
or two; the clients pause meanwhile (the lock would queue their lists and
transitions on every worker too) and resume while the lease's waiters wait.

The cluster (with durable commits), Redis and the proxy in front of Redis
belong to the test (tests/support/services.py). Everything is bounded in time; it
takes about a minute.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, create_engine

from runstats_app.statuses import ALLOWED_TRANSITIONS, STATUS_NAMES, RunStatus, is_terminal

from ..support.contract import NAME
from ..support.probes import (
    aggregate_client_ports,
    pid_connected_from,
    runs_table_locked,
    wait_for,
)
from ..support.servers import GunicornServer, StatsCacheTimings, create_token
from ..support.services import RedisServer, TcpProxyProcess, TemporaryPostgres
from ..support.stacks import private_backends

pytestmark = pytest.mark.multiprocess

WORKERS = 4
TIMINGS = StatsCacheTimings(
    ttl_seconds=2, grace_seconds=10, statement_timeout_ms=3000, lease_ms=4000, wait_ms=9000
)
REQUEST_TIMEOUT = 20.0
READ_CLIENTS = 3
WRITE_CLIENTS = 3
RUNS_PER_WRITER = 4
# A request that began within this long after the database came back may still see it down.
RECOVERY_SLACK_SECONDS = 5.0
READ_FILTERS = [
    None,
    {"and": [{"value_contains": {"key": NAME, "value_substring": "train"}}]},
    {"and": [{"value_equals": {"key": "team", "value": "ml"}}]},
    {"or": [{"key_exists": {"key": "env"}}, {"not": {"key_exists": {"key": "team"}}}]},
]


@dataclass
class Answer:
    kind: str
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (connection error or timeout)
    retry_after: str | None = None
    body: Any = None
    error: str | None = None
    cache: str | None = None


@dataclass
class Stack:
    postgres: TemporaryPostgres
    redis_server: RedisServer
    proxy: TcpProxyProcess
    server: GunicornServer
    db: Engine
    token: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Gate:
    """Lets the clients' requests through, or holds them while the runs table is locked
    (the lock that slows the aggregate down would block every list and transition too)."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._inflight = 0

    @contextmanager
    def request(self) -> Iterator[None]:
        deadline = time.monotonic() + 30
        while True:
            with self._lock:
                if self._open.is_set() or time.monotonic() > deadline:
                    self._inflight += 1
                    break
            time.sleep(0.01)
        try:
            yield
        finally:
            with self._lock:
                self._inflight -= 1

    @contextmanager
    def closed(self) -> Iterator[None]:
        with self._lock:
            self._open.clear()
        try:
            assert wait_for(lambda: self._inflight == 0, timeout=REQUEST_TIMEOUT)
            yield
        finally:
            self._open.set()


@dataclass
class Timeline:
    """When the database was down: [stopped, back + slack] windows."""

    db_down: list[tuple[float, float]] = field(default_factory=list)

    def database_down_during(self, answer: Answer) -> bool:
        return any(answer.started <= end and answer.ended >= start for start, end in self.db_down)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    logs = tmp_path_factory.mktemp("faults")
    # Durable commits: the restart below is an immediate stop, and an acknowledged
    # transition must survive it.
    with private_backends("faults", TIMINGS, demo_runs=2000, seed=11, durable=True) as backends:
        token = create_token(backends.env, "alice", "writer")
        db = create_engine(backends.database_url, pool_pre_ping=True)
        try:
            with GunicornServer(
                backends.env, workers=WORKERS, log_path=logs / "gunicorn.log"
            ) as server:
                yield Stack(
                    backends.postgres, backends.redis_server, backends.proxy, server, db, token
                )
        finally:
            db.dispose()


def _call(kind: str, method: str, url: str, **kwargs: Any) -> Answer:
    started = time.monotonic()
    try:
        response = requests.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        return Answer(kind, started, time.monotonic(), None, error=type(exc).__name__)
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return Answer(
        kind,
        started,
        time.monotonic(),
        response.status_code,
        response.headers.get("Retry-After"),
        body,
        cache=response.headers.get("X-Cache"),
    )


# --- the clients -------------------------------------------------------------------------


def _reader(
    stack: Stack, seed: int, gate: Gate, stop: threading.Event, answers: list[Answer]
) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        filter_query = rng.choice(READ_FILTERS)
        params = {"filter_query": json.dumps(filter_query)} if filter_query else {}
        kind, path = rng.choice([("list", "/"), ("stats", "/stats")])
        with gate.request():
            answers.append(
                _call(kind, "GET", f"{stack.url}/api/pipeline_runs{path}", params=params)
            )
        time.sleep(rng.uniform(0.01, 0.05))


@dataclass
class RunLedger:
    """What one writer was told about one run."""

    run_id: str
    status: str
    told: list[tuple[str, str]] = field(default_factory=list)  # 200s: (from, to)
    unknown: list[tuple[str, str]] = field(default_factory=list)  # no answer, or a 503


TARGETS: dict[str, list[str]] = {
    status.value: sorted(target.value for target in targets)
    for status, targets in ALLOWED_TRANSITIONS.items()
}
# Favour long lives: back to work, and retries (FAILED with attempts left becomes PENDING).
WEIGHTS = {"RUNNING": 5, "PENDING": 3, "FAILED": 3, "CANCELLING": 1}


def _writer(
    stack: Stack, seed: int, gate: Gate, stop: threading.Event, answers: list[Answer]
) -> list[RunLedger]:
    rng = random.Random(seed)
    ledgers: list[RunLedger] = []
    active: list[RunLedger] = []

    def call(kind: str, method: str, path: str, **kwargs: Any) -> Answer:
        with gate.request():
            answer = _call(kind, method, f"{stack.url}/api/pipeline_runs{path}", **kwargs)
        answers.append(answer)
        return answer

    def create() -> None:
        answer = call(
            "create",
            "POST",
            "/",
            json={"name": f"faults-{seed}", "max_attempts": 3, "annotations": {"team": "ml"}},
            headers=stack.auth,
        )
        if answer.status == 201:
            ledger = RunLedger(answer.body["id"], answer.body["status"])
            ledgers.append(ledger)
            active.append(ledger)

    def resync(ledger: RunLedger) -> None:
        """After an answer that says nothing, learn the run's status from the service."""
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            answer = call("resync", "GET", f"/{ledger.run_id}")
            if answer.status == 200:
                ledger.status = answer.body["status"]
                return
            time.sleep(0.2)

    while not stop.is_set():
        while len(active) < RUNS_PER_WRITER and not stop.is_set():
            create()
            if len(active) < RUNS_PER_WRITER:
                time.sleep(0.2)
        if not active:
            continue
        ledger = rng.choice(active)
        choices = TARGETS[ledger.status]
        target = rng.choices(choices, weights=[WEIGHTS.get(t, 1) for t in choices])[0]
        answer = call(
            "transition",
            "POST",
            f"/{ledger.run_id}/transitions",
            json={"status": target, "expected_status": ledger.status},
            headers=stack.auth,
        )
        if answer.status == 200:
            ledger.told.append((ledger.status, answer.body["status"]))
            ledger.status = answer.body["status"]
        elif answer.status is None or answer.status == 503:
            ledger.unknown.append((ledger.status, target))
            resync(ledger)
        elif answer.status == 409:
            # Only an unknown outcome can have moved the run behind this client's back.
            resync(ledger)
        if is_terminal(RunStatus(ledger.status)):
            active.remove(ledger)
        time.sleep(rng.uniform(0.01, 0.04))
    return ledgers


# --- the faults --------------------------------------------------------------------------


def _ready(stack: Stack) -> bool:
    try:
        return requests.get(f"{stack.url}/readyz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _kill_the_lease_holder(stack: Stack, gate: Gate) -> tuple[list[Answer], int]:
    """A cold stats key, four requests for it; SIGKILL the worker whose aggregate runs.

    The filter is one only a scan answers (an `or`), so that the runs table's lock holds it.
    The clients pause while the runs table is locked (at most a second or two), or their
    lists and transitions would queue on the lock and fill every worker.
    """
    cold = json.dumps(
        {
            "or": [
                {"value_contains": {"key": NAME, "value_substring": uuid.uuid4().hex[:6]}},
                {"key_exists": {"key": "no-run-has-this"}},
            ]
        }
    )
    url = f"{stack.url}/api/pipeline_runs/stats"
    with ThreadPoolExecutor(4) as pool, gate.closed(), runs_table_locked(stack.db):
        futures = [
            pool.submit(_call, "lease-stats", "GET", url, params={"filter_query": cold})
            for _ in range(4)
        ]
        ports = wait_for(lambda: aggregate_client_ports(stack.db), timeout=5)
        assert len(ports) == 1, f"expected one aggregate under the lease, saw {ports}"
        holder = pid_connected_from(ports[0])
        assert holder is not None and holder in stack.server.worker_pids()
        os.kill(holder, signal.SIGKILL)
    return [f.result() for f in futures], holder


def _check_read_answer(answer: Answer, timeline: Timeline) -> str | None:
    """What is wrong with a list or stats answer, or None."""
    if answer.status is None:
        return f"{answer.kind}: no answer ({answer.error})"
    if answer.status == 503:
        if not answer.retry_after:
            return f"{answer.kind}: 503 without Retry-After"
        if answer.kind != "list" and _busy(answer):
            return None
        if not timeline.database_down_during(answer):
            return f"{answer.kind}: 503 while the database was up: {answer.body}"
        return None
    if answer.status != 200:
        return f"{answer.kind}: {answer.status} {answer.body}"
    if answer.kind == "list":
        if not isinstance(answer.body, dict) or "pipeline_runs" not in answer.body:
            return f"list: malformed body {answer.body!r:.200}"
        return None
    counts = answer.body.get("counts_by_status", {})
    if set(counts) != set(STATUS_NAMES) or answer.body["total_runs"] != sum(counts.values()):
        return f"stats: inconsistent body {answer.body!r:.200}"
    return None


def _busy(answer: Answer) -> bool:
    """A stats scan that was not admitted (too many at once): a 503 by design."""
    message = answer.body.get("message", "") if isinstance(answer.body, dict) else ""
    return str(message).startswith("Too many stats computations")


def _history_problems(stack: Stack, ledger: RunLedger) -> list[str]:
    response = requests.get(f"{stack.url}/api/pipeline_runs/{ledger.run_id}/history", timeout=10)
    assert response.status_code == 200, response.text
    history = [(h["from_status"], h["to_status"]) for h in response.json()]
    problems = []
    chained = all(history[i][1] == history[i + 1][0] for i in range(len(history) - 1))
    if not chained:
        problems.append(f"history is not a chain: {history}")
    # Every 200 appears exactly once, in order; anything else is a change whose answer the
    # client never got (or got as a 503) - never a change nobody asked for.
    told = list(ledger.told)
    unknown = list(ledger.unknown)
    for change in history:
        if told and change == told[0]:
            told.pop(0)
        elif change in unknown:
            unknown.remove(change)
        elif change[1] == "PENDING" and (change[0], "FAILED") in unknown:
            unknown.remove((change[0], "FAILED"))  # a retry: FAILED asked, PENDING given
        else:
            problems.append(f"unexpected change {change} in {history}; told {ledger.told}")
    if told:
        problems.append(f"lost: told {told} succeeded, history {history}")
    return problems


def test_traffic_survives_redis_postgres_and_a_killed_lease_holder(stack: Stack) -> None:
    deadline = time.monotonic() + 150
    stop = threading.Event()
    timeline = Timeline()
    gate = Gate()
    read_answers: list[list[Answer]] = [[] for _ in range(READ_CLIENTS)]
    write_answers: list[list[Answer]] = [[] for _ in range(WRITE_CLIENTS)]
    with ThreadPoolExecutor(READ_CLIENTS + WRITE_CLIENTS) as pool:
        readers = [
            pool.submit(_reader, stack, i, gate, stop, read_answers[i])
            for i in range(READ_CLIENTS)
        ]
        writers = [
            pool.submit(_writer, stack, 100 + i, gate, stop, write_answers[i])
            for i in range(WRITE_CLIENTS)
        ]
        try:
            time.sleep(3)
            # (a) Redis: refused, then hung, then a real restart with an empty cache.
            stack.proxy.set_mode("down")
            time.sleep(4)
            stack.proxy.set_mode("forward")
            time.sleep(2)
            stack.proxy.set_mode("blackhole")
            time.sleep(3)
            stack.proxy.set_mode("forward")
            time.sleep(2)
            stack.redis_server.stop()
            time.sleep(1)
            stack.redis_server.start()
            time.sleep(3)
            # (b) PostgreSQL: an immediate stop (crash-like), down for a few seconds.
            down_at = time.monotonic()
            stack.postgres.stop()
            time.sleep(3)
            stack.postgres.start()
            assert wait_for(lambda: _ready(stack), timeout=30, interval=0.2)
            timeline.db_down.append((down_at, time.monotonic() + RECOVERY_SLACK_SECONDS))
            time.sleep(RECOVERY_SLACK_SECONDS)
            # (c) The worker holding a stats lease dies mid-aggregate.
            lease_answers, killed = _kill_the_lease_holder(stack, gate)
            time.sleep(3)
        finally:
            stop.set()
        for future in readers:
            future.result(timeout=max(1.0, deadline - time.monotonic()))
        ledgers = [
            ledger
            for future in writers
            for ledger in future.result(timeout=max(1.0, deadline - time.monotonic()))
        ]

    reads = [answer for answers in read_answers for answer in answers]
    writes = [answer for answers in write_answers for answer in answers]
    assert len(reads) > 100 and len(writes) > 50, (len(reads), len(writes))

    # The faults were felt: stats bypassed the shared cache, and the database was down.
    assert any(a.cache == "bypass" for a in reads), "Redis outages were never noticed"
    assert any(a.status == 503 for a in reads + writes), "the database outage was never seen"

    # No 500 anywhere; 503 (with Retry-After) only while the database was down.
    problems = [p for p in (_check_read_answer(a, timeline) for a in reads) if p]
    assert not problems, problems[:10]
    for answer in writes:
        assert answer.status != 500, answer.body
        if answer.status == 503:
            assert answer.retry_after and timeline.database_down_during(answer), answer
        # The killed worker served a stats request: no writer lost its connection.
        assert answer.status is not None, answer

    # The requests in the killed worker (the holder's, and any of the four that its other
    # threads served) got no answer; the others waited for a successor's result, or, when
    # the readers' own scans held the slots as the successor began, were refused one
    # (a busy 503 with Retry-After, as a flood's are).
    assert any(a.status is None for a in lease_answers), lease_answers
    for answer in lease_answers:
        refused = answer.status == 503 and bool(answer.retry_after) and _busy(answer)
        assert answer.status in (None, 200) or refused, (answer.status, answer.body)
    assert killed not in stack.server.worker_pids()

    # Nothing lost, nothing duplicated.
    assert sum(len(ledger.told) for ledger in ledgers) > 30
    history_problems = [p for ledger in ledgers for p in _history_problems(stack, ledger)]
    assert not history_problems, history_problems[:10]

    # Recovered without a restart: all workers answer, and the shared cache is used again.
    assert len(stack.server.worker_pids()) == WORKERS
    assert requests.get(f"{stack.url}/readyz", timeout=10).json()["checks"] == {
        "database": "ok",
        "redis": "ok",
    }

    def shared_cache_serves() -> bool:
        caches = {
            requests.get(f"{stack.url}/api/pipeline_runs/stats", timeout=10).headers["X-Cache"]
            for _ in range(WORKERS * 2)
        }
        return caches <= {"hit", "miss"}

    assert wait_for(shared_cache_serves, timeout=15, interval=0.5)
