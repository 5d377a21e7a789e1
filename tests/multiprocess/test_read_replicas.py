"""Reads on a streaming replica, with real processes: a primary, a hot standby, two hosts.

What ran where is counted by PostgreSQL itself: pg_stat_statements on each
server (statements tagged as stats computations, and the list's query). The
replica is started from a base backup of the primary (`pg_basebackup -R`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from ..support.contract import NAME
from ..support.probes import COMPUTATION, wait_for
from ..support.servers import GunicornServer, StatsCacheTimings, create_token, flask_command
from ..support.services import RedisServer, TemporaryPostgres

pytestmark = pytest.mark.multiprocess

TIMINGS = StatsCacheTimings(
    ttl_seconds=20, grace_seconds=30, statement_timeout_ms=3000, lease_ms=4000, wait_ms=9000
)
MAX_LAG_MS = 2000
LIST = "%ORDER BY pipeline_runs.created_at DESC, pipeline_runs.id DESC%"


@dataclass
class Stack:
    primary: TemporaryPostgres
    replica: TemporaryPostgres
    hosts: list[GunicornServer]
    writer: dict[str, str]

    def calls(self, server: TemporaryPostgres, pattern: str) -> int:
        row = server.execute(
            f"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '{pattern}'",
            "runstats",
        )
        return int(row[0])

    def reset(self) -> None:
        for server in (self.primary, self.replica):
            server.execute("SELECT pg_stat_statements_reset()", "runstats")

    def replica_caught_up(self) -> bool:
        position = self.primary.execute("SELECT pg_current_wal_lsn()")[0]
        row = self.replica.execute(f"SELECT pg_last_wal_replay_lsn() >= '{position}'::pg_lsn")
        return bool(row[0])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("replicas")
    primary = TemporaryPostgres(durable=True).start()
    replica: TemporaryPostgres | None = None
    redis_server = RedisServer().start()
    hosts: list[GunicornServer] = []
    try:
        url = primary.create_database()
        primary.execute("CREATE EXTENSION pg_stat_statements", "runstats")
        replica = TemporaryPostgres(replica_of=primary).start()
        env = {
            "RUNSTATS_DATABASE_URL": url,
            "RUNSTATS_DATABASE_REPLICA_URLS": replica.url("runstats"),
            "RUNSTATS_REPLICA_MAX_LAG_MS": str(MAX_LAG_MS),
            "RUNSTATS_REDIS_URL": redis_server.url,
            "RUNSTATS_SECRET_KEY": "replica-stack",
            **TIMINGS.env(),
        }
        flask_command(env, "db", "upgrade")
        flask_command(env, "demo-data", "--runs", "3000", "--seed", "5")
        token = create_token(env, "writer-1", "writer")
        for index in range(2):
            host = GunicornServer(env, workers=4, log_path=logs / f"host{index}.log").start()
            hosts.append(host)
        stack = Stack(primary, replica, hosts, {"Authorization": f"Bearer {token}"})
        assert wait_for(stack.replica_caught_up, 30)
        yield stack
    finally:
        for host in hosts:
            host.stop()
        redis_server.stop()
        if replica is not None:
            replica.destroy()
        primary.destroy()


def _scan_filter(substring: str) -> str:
    """Only a scan answers it (an `or`): one aggregate over the runs."""
    return json.dumps(
        {
            "or": [
                {"value_contains": {"key": NAME, "value_substring": substring}},
                {"key_exists": {"key": "no-run-has-this"}},
            ]
        }
    )


def _stats(stack: Stack, index: int, filter_query: str) -> requests.Response:
    host = stack.hosts[index % len(stack.hosts)]
    return requests.get(
        f"{host.url}/api/pipeline_runs/stats", params={"filter_query": filter_query}, timeout=30
    )


def _list(stack: Stack, index: int) -> requests.Response:
    host = stack.hosts[index % len(stack.hosts)]
    return requests.get(f"{host.url}/api/pipeline_runs/", params={"page_size": 5}, timeout=30)


def test_a_cold_burst_across_both_hosts_computes_once_on_the_replica(stack: Stack) -> None:
    stack.reset()
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda i: _stats(stack, i, _scan_filter("etl")), range(100)))
    assert {a.status_code for a in answers} == {200}
    assert stack.calls(stack.replica, COMPUTATION) == 1
    assert stack.calls(stack.primary, COMPUTATION) == 0


def test_lists_run_on_the_replica(stack: Stack) -> None:
    stack.reset()
    for index in range(10):
        assert _list(stack, index).status_code == 200
    ready = [requests.get(f"{h.url}/readyz", timeout=10).json() for h in stack.hosts]
    where = (stack.calls(stack.replica, LIST), stack.calls(stack.primary, LIST), ready)
    assert where[0] >= 10 and where[1] == 0, where


def test_a_run_created_through_one_host_is_read_back_at_once_through_the_other(
    stack: Stack,
) -> None:
    created = requests.post(
        f"{stack.hosts[0].url}/api/pipeline_runs/",
        json={"name": "read-your-writes"},
        headers=stack.writer,
        timeout=30,
    )
    assert created.status_code == 201
    found = requests.get(
        f"{stack.hosts[1].url}/api/pipeline_runs/{created.json()['id']}", timeout=30
    )
    assert found.status_code == 200 and found.json()["name"] == "read-your-writes"


class Readers:
    """Clients listing through both hosts until stopped; every status they got."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(4)]

    def _run(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                self.statuses.append(_list(self.stack, index).status_code)
            except requests.RequestException:
                self.statuses.append(0)
            index += 1

    def __enter__(self) -> Readers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def _lists_run_on(stack: Stack, server: TemporaryPostgres) -> bool:
    before = stack.calls(server, LIST)
    time.sleep(0.5)
    return stack.calls(server, LIST) > before


def test_a_stopped_replica_moves_reads_to_the_primary_without_errors_and_back(
    stack: Stack,
) -> None:
    with Readers(stack) as readers:
        assert wait_for(lambda: _lists_run_on(stack, stack.replica), 10)
        stack.replica.stop()
        stopped = time.monotonic()
        assert wait_for(lambda: _lists_run_on(stack, stack.primary), 10)
        moved_after = time.monotonic() - stopped
        stack.replica.start()
        assert wait_for(lambda: _lists_run_on(stack, stack.replica), 20)
    assert set(readers.statuses) == {200}, sorted(set(readers.statuses))
    assert moved_after < 5


def test_paused_replay_past_the_lag_limit_skips_the_replica_until_resumed(
    stack: Stack,
) -> None:
    stack.replica.execute("SELECT pg_wal_replay_pause()")
    try:
        with Readers(stack) as readers:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not _lists_run_on(stack, stack.primary):
                requests.post(
                    f"{stack.hosts[0].url}/api/pipeline_runs/",
                    json={"name": "advance-the-primary"},
                    headers=stack.writer,
                    timeout=30,
                )
            assert _lists_run_on(stack, stack.primary), "the lagging replica was not skipped"
            ready = requests.get(f"{stack.hosts[0].url}/readyz", timeout=10)
            assert ready.status_code == 200
            assert [r["state"] for r in ready.json()["replicas"].values()] == ["lagging"]
            stack.replica.execute("SELECT pg_wal_replay_resume()")
            assert wait_for(lambda: _lists_run_on(stack, stack.replica), 20)
        assert set(readers.statuses) == {200}
    finally:
        stack.replica.execute("SELECT pg_wal_replay_resume()")
