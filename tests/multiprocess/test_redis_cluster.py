"""The shared stats cache on a Redis Cluster of three masters, with real processes: two
hosts (gunicorn, 4 workers each) sharing it and one PostgreSQL.

Aggregates are counted by PostgreSQL itself (pg_stat_statements), as in
test_stats_cache.py; the filters are ones only a scan answers, and a table lock
held by the test keeps the one aggregate running while the burst arrives.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests
from redis.cluster import RedisCluster, key_slot
from sqlalchemy import Engine, create_engine

from runstats_app.filters.schema import parse_filter_query
from runstats_app.stats.canonical import cache_key

from ..support.contract import NAME
from ..support.probes import (
    AGGREGATE,
    aggregate_client_ports,
    reset_statement_calls,
    runs_table_locked,
    statement_calls,
    wait_for,
)
from ..support.redis_ha import ClusterGroup, require_redis_server
from ..support.servers import GunicornServer, StatsCacheTimings
from ..support.stacks import private_database

pytestmark = pytest.mark.multiprocess

TIMINGS = StatsCacheTimings(
    ttl_seconds=10, grace_seconds=30, statement_timeout_ms=3000, lease_ms=4000, wait_ms=9000
)
WORKERS_PER_HOST = 4


@dataclass
class Stack:
    cluster: RedisCluster
    hosts: list[GunicornServer]
    db: Engine

    def aggregate_calls(self) -> int:
        return statement_calls(self.db, AGGREGATE)

    def reset_counts(self) -> None:
        reset_statement_calls(self.db)

    def stats(self, index: int, filter_query: str) -> requests.Response:
        host = self.hosts[index % len(self.hosts)]
        params = {"filter_query": filter_query}
        return requests.get(f"{host.url}/api/pipeline_runs/stats", params=params, timeout=30)

    def burst(self, count: int, filter_query: str) -> list[requests.Response]:
        with ThreadPoolExecutor(32) as pool:
            return list(pool.map(lambda i: self.stats(i, filter_query), range(count)))


def _filter(substring: str) -> str:
    """Runs whose name contains the substring, written so that only a scan answers it."""
    return json.dumps(
        {
            "or": [
                {"value_contains": {"key": NAME, "value_substring": substring}},
                {"key_exists": {"key": "no-run-has-this"}},
            ]
        }
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_redis_server()
    root = tmp_path_factory.mktemp("cluster")
    hosts: list[GunicornServer] = []
    with ClusterGroup(root / "redis") as group:
        settings = {"RUNSTATS_SECRET_KEY": "cluster-stack", **TIMINGS.env(), **group.env()}
        with private_database(settings, demo_runs=3000, seed=13) as (postgres, env):
            postgres.execute("CREATE EXTENSION pg_stat_statements", "runstats")
            db = create_engine(env["RUNSTATS_DATABASE_URL"])
            try:
                for index in range(2):
                    host_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(root / f"metrics{index}")}
                    log_path = root / f"host{index}.log"
                    server = GunicornServer(host_env, WORKERS_PER_HOST, log_path=log_path)
                    hosts.append(server.start())
                yield Stack(group.client(), hosts, db)
            finally:
                for host in hosts:
                    host.stop()
                db.dispose()


def test_a_cold_burst_across_both_hosts_runs_one_aggregate(stack: Stack) -> None:
    filter_query = _filter("train")
    stack.reset_counts()
    waiter = ThreadPoolExecutor(1)
    with runs_table_locked(stack.db):
        answers_later = waiter.submit(stack.burst, 200, filter_query)
        assert wait_for(lambda: aggregate_client_ports(stack.db), 10), "no aggregate started"
        time.sleep(1.0)
    answers = answers_later.result()
    waiter.shutdown()
    caches = sorted(a.headers.get("X-Cache", "") for a in answers)
    assert [a.status_code for a in answers] == [200] * 200
    assert len({a.content for a in answers}) == 1
    assert (caches.count("miss"), set(caches)) == (1, {"miss", "hit"})
    assert stack.aggregate_calls() == 1


def test_a_warm_burst_across_both_hosts_runs_no_aggregate(stack: Stack) -> None:
    filter_query = _filter("etl")
    assert stack.stats(0, filter_query).status_code == 200
    stack.reset_counts()
    answers = stack.burst(200, filter_query)
    assert {a.headers.get("X-Cache") for a in answers} == {"hit"}
    assert stack.aggregate_calls() == 0


def test_a_result_lives_in_the_cluster_beside_its_generation(stack: Stack) -> None:
    filter_query = _filter("eval")
    assert stack.stats(1, filter_query).status_code == 200
    key = cache_key(parse_filter_query(filter_query), None)
    assert stack.cluster.exists(key, f"{key}:gen") == 2
    assert key_slot(key.encode()) == key_slot(f"{key}:gen".encode())


def test_readiness_and_metrics_answer_with_the_cluster(stack: Stack) -> None:
    for host in stack.hosts:
        ready = requests.get(f"{host.url}/readyz", timeout=10)
        assert (ready.status_code, ready.json()["checks"]["redis"]) == (200, "ok")
        assert requests.get(f"{host.url}/metrics", timeout=10).status_code == 200
