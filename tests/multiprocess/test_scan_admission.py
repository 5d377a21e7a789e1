"""Bounded scans through gunicorn: a flood of distinct stats filters beside a writer.

Scans are made slow by the test deployment's hook (RUNSTATS_TEST_SCAN_SLEEP_MS:
a tagged pg_sleep in each scan's own session), not by a lock on the runs
table, which would block the writer too. Running scans are counted by
PostgreSQL (pg_stat_activity, leaders only), never by the app.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import redis
import requests
from sqlalchemy import Engine, create_engine

from runstats_app.stats.admission import SLOTS_KEY

from ..support.api import RUNS
from ..support.probes import Sampler, pid_connected_from, running_scans, wait_for
from ..support.servers import GunicornServer, StatsCacheTimings, create_token
from ..support.services import TcpProxyProcess
from ..support.stacks import private_backends
from ..support.stats import STATS

pytestmark = pytest.mark.multiprocess

TIMINGS = StatsCacheTimings(
    ttl_seconds=20, grace_seconds=30, statement_timeout_ms=3000, lease_ms=4000, wait_ms=9000
)
WORKERS = 4
PER_PROCESS = 1
TOTAL = 2
SCAN_SECONDS = 1.5


@dataclass
class Stack:
    server: GunicornServer
    db: Engine
    redis: redis.Redis
    proxy: TcpProxyProcess
    writer: dict[str, str]
    flood_round: list[int] = field(default_factory=lambda: [0])

    def distinct_filters(self, count: int) -> list[str]:
        """Filters no maintained count answers (an `or` with a `not`), each a new cache key."""
        self.flood_round[0] += 1
        return [
            json.dumps(
                {
                    "or": [
                        {"value_equals": {"key": "flood", "value": f"{self.flood_round[0]}-{i}"}},
                        {"not": {"key_exists": {"key": "team"}}},
                    ]
                }
            )
            for i in range(count)
        ]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("admission")
    scans = {
        "RUNSTATS_STATS_SCANS_PER_PROCESS": str(PER_PROCESS),
        "RUNSTATS_STATS_SCANS_TOTAL": str(TOTAL),
        "RUNSTATS_TEST_SCAN_SLEEP_MS": str(int(SCAN_SECONDS * 1000)),
    }
    with private_backends(
        "admission-stack", TIMINGS, demo_runs=2000, seed=11, more_env=scans
    ) as backends:
        token = create_token(backends.env, "writer-1", "writer")
        with GunicornServer(
            backends.env, workers=WORKERS, log_path=logs / "gunicorn.log"
        ) as server:
            db = create_engine(backends.database_url)
            try:
                yield Stack(
                    server,
                    db,
                    redis.Redis(port=backends.redis_server.port),
                    backends.proxy,
                    {"Authorization": f"Bearer {token}"},
                )
            finally:
                db.dispose()


@dataclass(frozen=True)
class Answer:
    status: int
    cache: str | None
    retry_after: str | None
    seconds: float


def ask(stack: Stack, filter_query: str) -> Answer:
    started = time.monotonic()
    response = requests.get(
        stack.server.url + STATS, params={"filter_query": filter_query}, timeout=30
    )
    return Answer(
        response.status_code,
        response.headers.get("X-Cache"),
        response.headers.get("Retry-After"),
        time.monotonic() - started,
    )


def write_once(stack: Stack) -> float:
    """Create a run and move it to RUNNING; the seconds both took."""
    started = time.monotonic()
    created = requests.post(
        stack.server.url + RUNS, json={"name": "flood-writer"}, headers=stack.writer, timeout=30
    )
    assert created.status_code == 201, created.text
    moved = requests.post(
        f"{stack.server.url}{RUNS}{created.json()['id']}/transitions",
        json={"status": "RUNNING"},
        headers=stack.writer,
        timeout=30,
    )
    assert moved.status_code == 200, moved.text
    return time.monotonic() - started


def flood(stack: Stack, filters: list[str]) -> tuple[list[Answer], list[float], int]:
    """The filters asked at once by 16 clients while a writer writes; (answers, writes, scans)."""
    with Sampler(lambda: running_scans(stack.db)) as scans, ThreadPoolExecutor(17) as pool:
        asked = [pool.submit(ask, stack, f) for f in filters]
        writes: list[float] = []
        while not all(future.done() for future in asked) or len(writes) < 5:
            writes.append(write_once(stack))
        answers = [future.result() for future in asked]
    assert scans.samples > 10
    return answers, writes, scans.highest


def test_a_flood_of_distinct_filters_keeps_writes_fast_and_scans_within_the_bound(
    stack: Stack,
) -> None:
    before = [write_once(stack) for _ in range(10)]
    answers, writes, highest = flood(stack, stack.distinct_filters(48))
    assert 1 <= highest <= TOTAL, highest
    assert {a.status for a in answers} <= {200, 503}
    refused = [a for a in answers if a.status == 503]
    assert refused, "the bound never refused a scan"
    assert all(a.retry_after and int(a.retry_after) >= 1 for a in refused)
    # Fast: no wait for a slot, whatever the machine's load (loaded CI: ~0.55 s).
    assert statistics.median(a.seconds for a in refused) < 1.5
    assert max(writes) < max(1.0, 5 * max(before)), (before, writes)


def test_after_a_flood_every_key_is_computed_normally(stack: Stack) -> None:
    filters = stack.distinct_filters(12)
    answers, _, _ = flood(stack, filters)
    for filter_query, answer in zip(filters, answers, strict=True):
        if answer.status == 503:
            again = wait_for(lambda f=filter_query: ask(stack, f).status == 200, 30, 0.5)
            assert again, f"{filter_query} never computed after the flood"


def test_a_killed_workers_scan_slot_frees_itself_by_expiry(stack: Stack) -> None:
    assert wait_for(lambda: stack.redis.zcard(SLOTS_KEY) == 0, 10)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(ask, stack, stack.distinct_filters(1)[0])
        ports = wait_for(lambda: _scan_ports(stack), 5)
        assert ports, "no scan started"
        pid = pid_connected_from(ports[0])
        assert pid in stack.server.worker_pids()
        os.kill(pid, signal.SIGKILL)
    assert stack.redis.zcard(SLOTS_KEY) == 1, "the dead worker's slot should still be held"
    lease_seconds = TIMINGS.lease_ms / 1000
    assert wait_for(lambda: stack.redis.zcard(SLOTS_KEY) == 0, lease_seconds + 5, 0.1)
    assert wait_for(lambda: len(stack.server.worker_pids()) == WORKERS, 15)
    assert ask(stack, stack.distinct_filters(1)[0]).status == 200


def _scan_ports(stack: Stack) -> list[int]:
    with stack.db.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT client_port FROM pg_stat_activity WHERE state = 'active'"
            " AND query LIKE '/* runstats:stats-scan */%%' AND datname = current_database()"
        )
        return [int(port) for (port,) in rows]


def test_with_redis_down_each_process_keeps_its_own_bound(stack: Stack) -> None:
    stack.proxy.set_mode("down")
    try:
        answers, writes, highest = flood(stack, stack.distinct_filters(32))
    finally:
        stack.proxy.set_mode("forward")
    assert 1 <= highest <= WORKERS * PER_PROCESS, highest
    assert {a.status for a in answers} <= {200, 503}
    assert {a.cache for a in answers if a.status == 200} <= {"bypass", "stale"}
    assert all(a.retry_after for a in answers if a.status == 503)
    assert max(writes) < 2.0, writes
