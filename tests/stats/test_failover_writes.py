"""What a Redis failover may lose, and why the cache stays right: replication is
asynchronous, so the new master may lack the latest lease, generation increment or
result. fakeredis stands in for the new master; the test deletes what a failover lost."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import fakeredis

from runstats_app.stats.cache import CacheSettings, StatsCache
from runstats_app.stats.envelope import Envelope, decode
from runstats_app.stats.result import MISS, SCAN, STALE, Computed

SETTINGS = CacheSettings(
    ttl_ms=1000, grace_ms=2000, lease_ms=5000, wait_ms=6000, scans_per_process=2, scans_total=4
)
KEY = "runstats:stats:v2:{" + "cd" * 32 + "}"
LEASE, GENERATION = f"{KEY}:lease", f"{KEY}:gen"


class Computation:
    """Answers its own `body`; with a gate, waits for the test between start and return."""

    source = SCAN

    def __init__(self, body: bytes, gated: bool = False) -> None:
        self.body = body
        self.started = threading.Event()
        self.gate = threading.Event()
        if not gated:
            self.gate.set()

    def __call__(self) -> Computed:
        self.started.set()
        assert self.gate.wait(10), "the test never opened the gate"
        return Computed(self.body, datetime(2026, 3, 19, tzinfo=UTC), SCAN)


def worker(server: fakeredis.FakeServer) -> StatsCache:
    return StatsCache(SETTINGS, fakeredis.FakeRedis(server=server))


def stored_body(client: fakeredis.FakeRedis) -> bytes | None:
    envelope = decode(client.hget(KEY, "e"))
    return None if envelope is None else envelope.body


def in_thread(function: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(result=function()), daemon=True)
    thread.start()
    return thread, outcome


def stored_result(client: fakeredis.FakeRedis, generation: int, body: bytes) -> None:
    """A result that survived the failover, past its TTL, at `generation`."""
    envelope = Envelope(1, "2026-03-19T00:00:00Z", SCAN, body)
    client.hset(KEY, mapping={"g": generation, "e": envelope.encode()})
    client.pexpire(KEY, SETTINGS.grace_ms - 100)


def test_a_lost_generation_counter_restarts_above_the_stored_result(server, redis_client):
    stored_result(redis_client, 57, b'{"old": 1}')
    redis_client.set(GENERATION, 3)
    result = worker(server).get(KEY, Computation(b'{"new": 1}'))
    assert result.cache == MISS
    assert stored_body(redis_client) == b'{"new": 1}'
    assert int(redis_client.hget(KEY, "g")) == 58
    assert int(redis_client.get(GENERATION)) == 58


def test_after_a_lost_counter_every_later_owner_writes_again(server, redis_client):
    stored_result(redis_client, 57, b'{"old": 1}')
    redis_client.delete(GENERATION)
    for round_ in range(3):
        body = b'{"round": %d}' % round_
        worker(server).get(KEY, Computation(body))
        assert stored_body(redis_client) == body
        redis_client.pexpire(KEY, SETTINGS.grace_ms - 100)


def test_an_owner_whose_lease_was_lost_never_writes_over_the_next_owners_result(
    server, redis_client
):
    first = Computation(b'{"first": 1}', gated=True)
    thread, outcome = in_thread(lambda: worker(server).get(KEY, first))
    assert first.started.wait(5)
    redis_client.delete(LEASE, GENERATION)
    second = worker(server).get(KEY, Computation(b'{"second": 1}'))
    first.gate.set()
    thread.join(10)
    assert second.cache == MISS
    assert outcome["result"].body == b'{"first": 1}'
    assert stored_body(redis_client) == b'{"second": 1}'


def test_an_owner_whose_lease_was_lost_writes_nothing(server, redis_client):
    """Nobody can tell whether a newer owner came and went: the result is not shared."""
    first = Computation(b'{"first": 1}', gated=True)
    thread, outcome = in_thread(lambda: worker(server).get(KEY, first))
    assert first.started.wait(5)
    redis_client.delete(LEASE)
    first.gate.set()
    thread.join(10)
    assert outcome["result"].body == b'{"first": 1}'
    assert not redis_client.exists(KEY)


def test_a_lease_that_was_lost_leaves_the_key_free_for_the_next_owner(server, redis_client):
    first = Computation(b'{"first": 1}', gated=True)
    thread, _ = in_thread(lambda: worker(server).get(KEY, first))
    assert first.started.wait(5)
    redis_client.delete(LEASE)
    assert worker(server).get(KEY, Computation(b'{"second": 1}')).cache == MISS
    first.gate.set()
    thread.join(10)


def test_a_result_the_new_master_lost_is_answered_stale_from_this_process_when_no_scan_may_run(
    server, redis_client
):
    cache = worker(server)
    cache.get(KEY, Computation(b'{"before": 1}'))
    redis_client.delete(KEY)
    with ExitStack() as slots:
        for _ in range(SETTINGS.scans_per_process):
            assert slots.enter_context(cache.admission.admit("other", shared=True)) is None
        result = cache.get(KEY, Computation(b'{"after": 1}'))
    assert (result.cache, result.body) == (STALE, b'{"before": 1}')
