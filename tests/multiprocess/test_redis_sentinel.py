"""A Sentinel failover under load, with real processes: a Redis master, its replica and
three Sentinels; two hosts (gunicorn, 4 workers each) reaching Redis through them.

The master is SIGKILLed while both hosts answer stats: they keep answering 200
(`bypass` while Redis is unusable), and the shared cache resumes on the promoted
replica within seconds, without restarting anything.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
import requests

from runstats_app.filters.schema import parse_filter_query
from runstats_app.stats.canonical import cache_key

from ..support.contract import NAME
from ..support.probes import wait_for
from ..support.redis_ha import SentinelGroup, require_redis_server
from ..support.servers import GunicornServer, StatsCacheTimings
from ..support.stacks import private_database

pytestmark = pytest.mark.multiprocess

TIMINGS = StatsCacheTimings(
    ttl_seconds=10, grace_seconds=30, statement_timeout_ms=3000, lease_ms=4000, wait_ms=9000
)
WORKERS_PER_HOST = 4
SHARED = {"hit", "miss", "stale"}
RESUME_WITHIN_SECONDS = 15.0


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


@dataclass
class Stack:
    redis: SentinelGroup
    hosts: list[GunicornServer]

    def stats(self, index: int, filter_query: str) -> requests.Response:
        host = self.hosts[index % len(self.hosts)]
        return requests.get(
            f"{host.url}/api/pipeline_runs/stats",
            params={"filter_query": filter_query},
            timeout=30,
        )


@dataclass
class Answer:
    at: float
    host: int
    status: int
    cache: str | None


@dataclass
class Load:
    """Threads asking both hosts for the stats of `filters` until stopped."""

    stack: Stack
    filters: list[str]
    threads: int = 8
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _run(self, offset: int) -> None:
        session = requests.Session()
        index = offset
        while not self._stop.is_set():
            host = index % len(self.stack.hosts)
            url = f"{self.stack.hosts[host].url}/api/pipeline_runs/stats"
            filter_query = self.filters[index % len(self.filters)]
            response = session.get(url, params={"filter_query": filter_query}, timeout=30)
            self.answers.append(
                Answer(
                    time.monotonic(), host, response.status_code, response.headers.get("X-Cache")
                )
            )
            index += 1
            time.sleep(0.01)

    def __enter__(self) -> Load:
        for offset in range(self.threads):
            worker = threading.Thread(target=self._run, args=(offset,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)

    def shared_since(self, since: float) -> bool:
        """Both hosts' answers of the last second are all from the shared cache."""
        recent = [a for a in self.answers[-200:] if a.at >= max(since, time.monotonic() - 1.0)]
        hosts = {a.host for a in recent}
        return len(hosts) == len(self.stack.hosts) and all(a.cache in SHARED for a in recent)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_redis_server()
    root = tmp_path_factory.mktemp("sentinel")
    group = SentinelGroup(root / "redis").start()
    hosts: list[GunicornServer] = []
    settings = {"RUNSTATS_SECRET_KEY": "sentinel-stack", **TIMINGS.env(), **group.env()}
    try:
        with private_database(settings, demo_runs=2000, seed=11) as (_postgres, env):
            for index in range(2):
                host_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(root / f"metrics{index}")}
                log_path = root / f"host{index}.log"
                hosts.append(GunicornServer(host_env, WORKERS_PER_HOST, log_path=log_path).start())
            yield Stack(group, hosts)
    finally:
        for host in hosts:
            host.stop()
        group.stop()


def test_a_master_killed_under_load_costs_no_error_and_sharing_resumes_on_the_new_master(
    stack: Stack,
) -> None:
    filters = [_filter("train"), _filter("etl")]
    for index, filter_query in enumerate(filters * 20):
        assert stack.stats(index, filter_query).status_code == 200
    old_port = stack.redis.master_port()
    with Load(stack, filters) as load:
        time.sleep(1.0)
        stack.redis.server_on(old_port).kill()
        killed_at = time.monotonic()
        new_port = stack.redis.promoted_after(old_port, 15)
        promoted_seconds = time.monotonic() - killed_at
        assert new_port is not None, "the Sentinels never promoted the replica"
        resumed = wait_for(lambda: load.shared_since(killed_at + 0.5), RESUME_WITHIN_SECONDS)
        resumed_seconds = time.monotonic() - killed_at
    answers = [a for a in load.answers if a.at >= killed_at]
    statuses = sorted({a.status for a in load.answers})
    caches = {c: sum(1 for a in answers if a.cache == c) for c in {a.cache for a in answers}}
    report = f"promoted in {promoted_seconds:.1f} s, shared in {resumed_seconds:.1f} s, {caches}"
    print(report)

    assert resumed, report
    assert statuses == [200], report
    assert caches.get("bypass", 0) > 0, report


def test_a_key_first_asked_after_the_failover_is_computed_once_and_shared_by_both_hosts(
    stack: Stack,
) -> None:
    filter_query = _filter("eval")
    master = redis.Redis(port=stack.redis.master_port())
    first = stack.stats(0, filter_query)
    second = stack.stats(1, filter_query)
    assert (first.status_code, first.headers["X-Cache"]) == (200, "miss")
    assert (second.status_code, second.headers["X-Cache"]) == (200, "hit")
    assert master.exists(cache_key(parse_filter_query(filter_query), None))


def test_readiness_and_metrics_answer_through_the_sentinels(stack: Stack) -> None:
    for host in stack.hosts:
        ready = requests.get(f"{host.url}/readyz", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["checks"]["redis"] == "ok"
        metrics = requests.get(f"{host.url}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert "runstats_stats_cache_redis_errors" in metrics.text
