"""The shared stats cache across two "hosts" (gunicorn x 4 workers each).

Aggregate queries are counted by PostgreSQL itself (pg_stat_statements on a
cluster the test owns), never by the cache's own reporting. The filters are
ones the maintained counts do not answer (an `or`), so each computation is a
scan of the runs, which a table lock held by the test makes as slow as a
scenario needs; one test checks the same guarantee for a read of the counts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import requests
from sqlalchemy import Engine, create_engine, text

from runstats_app.filters.schema import parse_filter_query
from runstats_app.stats.canonical import cache_key

from ..support.contract import NAME
from ..support.probes import (
    AGGREGATE,
    COUNTS_READ,
    aggregate_client_ports,
    clients_of,
    pid_connected_from,
    reset_statement_calls,
    runs_table_locked,
    statement_calls,
    wait_for,
)
from ..support.servers import GunicornServer, StatsCacheTimings
from ..support.services import TcpProxyProcess
from ..support.stacks import private_backends

pytestmark = pytest.mark.multiprocess

TIMINGS = StatsCacheTimings(
    ttl_seconds=10, grace_seconds=30, statement_timeout_ms=3000, lease_ms=4000, wait_ms=9000
)
WORKERS_PER_HOST = 4
BREAKER_RESET_SECONDS = 5.0


@dataclass
class Stack:
    hosts: list[GunicornServer]
    db: Engine
    redis: redis.Redis
    proxy: TcpProxyProcess

    def aggregate_calls(self) -> int:
        return statement_calls(self.db, AGGREGATE)

    def counts_reads(self) -> int:
        return statement_calls(self.db, COUNTS_READ)

    def reset_counts(self) -> None:
        reset_statement_calls(self.db)

    def slow_aggregate(self) -> AbstractContextManager[None]:
        """Hold an exclusive lock on the runs table: aggregates wait until we let go."""
        return runs_table_locked(self.db)

    def active_aggregates(self) -> list[int]:
        return aggregate_client_ports(self.db)

    def expected_counts(self, where_sql: str = "TRUE") -> dict[str, int]:
        with self.db.connect() as connection:
            rows = connection.execute(
                text(
                    f"SELECT status, count(*) FROM pipeline_runs WHERE {where_sql} GROUP BY status"
                )
            )
            return {status: int(count) for status, count in rows}


@dataclass
class Answer:
    status: int
    cache: str | None
    body: bytes
    seconds: float
    retry_after: str | None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    logs = tmp_path_factory.mktemp("stats-stack")
    with private_backends("stats-stack", TIMINGS, demo_runs=3000, seed=7) as backends:
        db = create_engine(backends.database_url)
        hosts: list[GunicornServer] = []
        try:
            with db.connect() as connection:
                connection.execute(text("CREATE EXTENSION pg_stat_statements"))
                connection.commit()
            for index in range(2):
                log_path = logs / f"host{index}.log"
                hosts.append(
                    GunicornServer(backends.env, WORKERS_PER_HOST, log_path=log_path).start()
                )
            yield Stack(hosts, db, redis.Redis(port=backends.redis_server.port), backends.proxy)
        finally:
            for host in hosts:
                host.stop()
            db.dispose()


def _filter(name_substring: str) -> str:
    """Runs whose name contains the substring, written so that only a scan answers it."""
    return json.dumps(
        {
            "or": [
                {"value_contains": {"key": NAME, "value_substring": name_substring}},
                {"key_exists": {"key": "no-run-has-this"}},
            ]
        }
    )


def _key(filter_query: str) -> str:
    return cache_key(parse_filter_query(filter_query), None)


def _get(stack: Stack, index: int, filter_query: str) -> Answer:
    host = stack.hosts[index % len(stack.hosts)]
    started = time.monotonic()
    response = requests.get(
        f"{host.url}/api/pipeline_runs/stats", params={"filter_query": filter_query}, timeout=30
    )
    return Answer(
        response.status_code,
        response.headers.get("X-Cache"),
        response.content,
        time.monotonic() - started,
        response.headers.get("Retry-After"),
    )


def _burst(stack: Stack, count: int, filter_query: str, threads: int = 64) -> Any:
    pool = ThreadPoolExecutor(threads)
    return pool, [pool.submit(_get, stack, i, filter_query) for i in range(count)]


def _counts(answer: Answer) -> dict[str, int]:
    body = json.loads(answer.body)
    return {status: n for status, n in body["counts_by_status"].items() if n}


def test_cold_burst_of_200_runs_one_aggregate_and_everyone_gets_the_same_body(
    stack: Stack,
) -> None:
    filter_query = _filter("train")
    stack.reset_counts()
    with stack.slow_aggregate():
        pool, futures = _burst(stack, 200, filter_query)
        assert wait_for(stack.active_aggregates, 5), "no aggregate started"
        time.sleep(1.0)
    answers = [f.result() for f in futures]
    pool.shutdown()
    assert [a.status for a in answers] == [200] * 200
    assert len({a.body for a in answers}) == 1
    assert sorted(a.cache for a in answers).count("miss") == 1
    assert {a.cache for a in answers} == {"miss", "hit"}
    assert stack.aggregate_calls() == 1
    assert _counts(answers[0]) == stack.expected_counts("name LIKE '%train%'")


def test_500_warm_requests_run_no_aggregate(stack: Stack) -> None:
    filter_query = _filter("etl")
    assert _get(stack, 0, filter_query).status == 200
    stack.reset_counts()
    pool, futures = _burst(stack, 500, filter_query, threads=32)
    answers = [f.result() for f in futures]
    pool.shutdown()
    assert {a.cache for a in answers} == {"hit"}
    assert stack.aggregate_calls() == 0


def test_after_soft_expiry_one_recompute_while_everyone_else_gets_stale_at_once(
    stack: Stack,
) -> None:
    filter_query = _filter("eval")
    first = _get(stack, 0, filter_query)
    assert first.cache == "miss"
    stack.redis.pexpire(_key(filter_query), TIMINGS.grace_seconds * 1000 - 1)
    stack.reset_counts()
    compute_seconds = 1.5
    with stack.slow_aggregate():
        pool, futures = _burst(stack, 100, filter_query, threads=16)
        assert wait_for(stack.active_aggregates, 5)
        time.sleep(compute_seconds)
    answers = [f.result() for f in futures]
    pool.shutdown()
    stale = [a for a in answers if a.cache == "stale"]
    assert [a.cache for a in answers].count("miss") == 1
    assert len(stale) >= 80
    assert all(a.body == first.body for a in stale)
    assert statistics.median(a.seconds for a in stale) < compute_seconds / 5
    assert stack.aggregate_calls() == 1


def test_a_killed_lease_owner_is_replaced_once_after_its_lease_expires(stack: Stack) -> None:
    filter_query = _filter("backfill")
    stack.reset_counts()
    with stack.slow_aggregate():
        pool, futures = _burst(stack, 40, filter_query, threads=40)
        ports = wait_for(stack.active_aggregates, 5)
        assert len(ports) == 1
        owner = pid_connected_from(ports[0])
        assert owner is not None
        in_the_owner = clients_of(owner, {host.port for host in stack.hosts})
        os.kill(owner, signal.SIGKILL)
        killed_at = time.monotonic()
        successor = wait_for(lambda: [p for p in stack.active_aggregates() if p != ports[0]], 10)
        assert successor, "nobody took over the lease"
        assert time.monotonic() - killed_at >= (TIMINGS.lease_ms / 1000) * 0.5
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result())
        except requests.ConnectionError:
            outcomes.append(None)
    pool.shutdown()
    answered = [a for a in outcomes if a is not None]
    # Only the requests the killed worker had accepted lose their connection.
    assert len(outcomes) - len(answered) <= in_the_owner
    for answer in answered:
        assert answer.status == 200 or (answer.status == 503 and answer.retry_after)
    # Waiters that began long before the kill may run out of their wait budget first.
    assert sum(1 for a in answered if a.status == 200) >= len(answered) // 2
    assert stack.aggregate_calls() == 1


def _outage(stack: Stack, mode: str, filter_query: str, where_sql: str) -> None:
    stack.proxy.set_mode(mode)
    try:
        stack.reset_counts()
        pool, futures = _burst(stack, 200, filter_query, threads=32)
        answers = [f.result() for f in futures]
        pool.shutdown()
        assert [a.status for a in answers] == [200] * 200
        assert {a.cache for a in answers} <= {"bypass", "stale"}
        assert max(a.seconds for a in answers) < 2.0
        assert stack.aggregate_calls() <= 2 * WORKERS_PER_HOST
        assert _counts(answers[-1]) == stack.expected_counts(where_sql)
        listing = requests.get(f"{stack.hosts[0].url}/api/pipeline_runs/", timeout=10)
        assert listing.status_code == 200
    finally:
        stack.proxy.set_mode("forward")


def _recovers(stack: Stack, filter_query: str) -> None:
    # Each worker's breaker lets one probe through once reset (its other threads answer
    # `bypass` meanwhile). Concurrent rounds reach every worker, which sequential
    # requests need not (the kernel picks the worker): rounds go on until one is answered
    # without `bypass`, so that the burst below meets no breaker still open.
    time.sleep(BREAKER_RESET_SECONDS + 0.5)
    deadline = time.monotonic() + 30
    while True:
        pool, futures = _burst(stack, 4 * 2 * WORKERS_PER_HOST, _filter("probe"), threads=32)
        caches = {future.result().cache for future in futures}
        pool.shutdown()
        if "bypass" not in caches:
            break
        assert time.monotonic() < deadline, "a worker kept bypassing Redis after it returned"
    stack.reset_counts()
    pool, futures = _burst(stack, 100, filter_query, threads=32)
    answers = [f.result() for f in futures]
    pool.shutdown()
    assert {a.cache for a in answers} <= {"miss", "hit"}
    assert stack.aggregate_calls() == 1


def test_stats_answer_from_the_database_while_redis_is_down_and_share_again_after(
    stack: Stack,
) -> None:
    _outage(stack, "down", _filter("export"), "name LIKE '%export%'")
    _recovers(stack, _filter("export-"))


def test_stats_answer_without_stalls_while_redis_is_black_holed_and_share_again_after(
    stack: Stack,
) -> None:
    _outage(stack, "blackhole", _filter("tokenize"), "name LIKE '%tokenize%'")
    _recovers(stack, _filter("tokenize-"))


def test_a_cold_burst_answered_from_the_counts_reads_them_once(stack: Stack) -> None:
    filter_query = json.dumps({"and": [{"value_contains": {"key": NAME, "value_substring": "a"}}]})
    stack.reset_counts()
    pool, futures = _burst(stack, 200, filter_query)
    answers = [f.result() for f in futures]
    pool.shutdown()
    assert [a.status for a in answers] == [200] * 200
    assert len({a.body for a in answers}) == 1
    assert stack.counts_reads() == 1
