"""Scan admission (runstats_app.stats.admission): per-process and cross-host bounds.

Two ScanAdmission instances sharing one fakeredis server stand in for two
worker processes; the Lua script runs in fakeredis' Lua.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack

import fakeredis
import pytest

from runstats_app.degraded import RateLimitedWarning
from runstats_app.redis_client import make_redis_client
from runstats_app.stats.admission import (
    CLIENT,
    HOSTS,
    PROCESS,
    SLOTS_KEY,
    Refusal,
    ScanAdmission,
)
from runstats_app.stats.breaker import CircuitBreaker

from ..support.servers import free_port

LEASE_MS = 5000
WARN = RateLimitedWarning(logging.getLogger(__name__))


def make(
    server: fakeredis.FakeServer | None, per_process: int = 1, total: int = 2
) -> ScanAdmission:
    client = fakeredis.FakeRedis(server=server) if server is not None else None
    return ScanAdmission(
        per_process=per_process,
        total=total,
        lease_ms=LEASE_MS,
        client=client,
        breaker=CircuitBreaker() if client is not None else None,
        warn=WARN,
    )


def hold(stack: ExitStack, admission: ScanAdmission, caller: str = "a") -> Refusal | None:
    return stack.enter_context(admission.admit(caller, shared=True))


def test_a_process_runs_at_most_its_own_number_of_scans(server):
    admission = make(server, per_process=2, total=10)
    with ExitStack() as stack:
        assert hold(stack, admission, "a") is None
        assert hold(stack, admission, "b") is None
        refusal = hold(stack, admission, "c")
    assert refusal is not None and refusal.scope == PROCESS and refusal.retry_after >= 1


def test_scans_across_processes_stop_at_the_total(server):
    workers = [make(server, per_process=1, total=2) for _ in range(3)]
    with ExitStack() as stack:
        assert hold(stack, workers[0], "a") is None
        assert hold(stack, workers[1], "b") is None
        refusal = hold(stack, workers[2], "c")
    assert refusal is not None and refusal.scope == HOSTS


def test_one_caller_holds_at_most_half_the_slots(server):
    workers = [make(server, per_process=1, total=4) for _ in range(4)]
    with ExitStack() as stack:
        assert hold(stack, workers[0], "greedy") is None
        assert hold(stack, workers[1], "greedy") is None
        refusal = hold(stack, workers[2], "greedy")
        assert refusal is not None and refusal.scope == CLIENT
        assert hold(stack, workers[3], "someone-else") is None


def test_a_slot_is_given_back_when_the_scan_ends(server):
    first, second = make(server, total=1), make(server, total=1)
    with first.admit("a", shared=True) as refusal:
        assert refusal is None
    with second.admit("b", shared=True) as refusal:
        assert refusal is None
    assert fakeredis.FakeRedis(server=server).zcard(SLOTS_KEY) == 0


def test_a_slot_is_given_back_when_the_scan_fails(server):
    first, second = make(server, total=1), make(server, total=1)
    with pytest.raises(RuntimeError), first.admit("a", shared=True):
        raise RuntimeError("statement timeout")
    with second.admit("b", shared=True) as refusal:
        assert refusal is None


def test_a_dead_holders_slot_frees_itself_when_its_lease_expires(server):
    redis = fakeredis.FakeRedis(server=server)
    seconds, micros = redis.time()
    now_ms = seconds * 1000 + micros // 1000
    redis.zadd(SLOTS_KEY, {"dead|holder": now_ms - LEASE_MS - 1})
    with make(server, total=1).admit("a", shared=True) as refusal:
        assert refusal is None
    assert redis.zscore(SLOTS_KEY, "dead|holder") is None


def test_a_live_holders_slot_is_not_taken(server):
    redis = fakeredis.FakeRedis(server=server)
    seconds, micros = redis.time()
    redis.zadd(SLOTS_KEY, {"live|holder": seconds * 1000 + micros // 1000})
    with make(server, total=1).admit("a", shared=True) as refusal:
        assert refusal is not None and refusal.scope == HOSTS


def test_retry_after_follows_how_long_scans_take(server):
    admission = make(server, per_process=1, total=5)
    for _ in range(40):
        admission.durations.record(4.0)
    with ExitStack() as stack:
        hold(stack, admission)
        refusal = hold(stack, admission)
    assert refusal is not None and 3 <= refusal.retry_after <= LEASE_MS // 1000


def test_retries_of_many_refused_callers_are_spread_out(server):
    admission = make(server, per_process=1, total=5)
    for _ in range(40):
        admission.durations.record(1.0)
    with ExitStack() as stack:
        hold(stack, admission)
        refusals = [hold(stack, admission) for _ in range(40)]
    waits = [r.retry_after for r in refusals if r is not None]
    assert len(waits) == 40 and min(waits) <= 2 and len(set(waits)) >= 3


def test_retry_after_never_exceeds_the_lease(server):
    admission = make(server)
    for _ in range(40):
        admission.durations.record(60.0)
    with ExitStack() as stack:
        hold(stack, admission)
        refusal = hold(stack, admission)
    assert refusal is not None and refusal.retry_after == LEASE_MS // 1000


def test_without_the_shared_store_only_the_process_bound_holds(server):
    workers = [make(server, per_process=1, total=1) for _ in range(2)]
    with (
        workers[0].admit("a", shared=False) as first,
        workers[1].admit("b", shared=False) as second,
    ):
        assert first is None and second is None


def test_redis_unreachable_leaves_the_process_bound_alone():
    admission = ScanAdmission(
        per_process=1,
        total=1,
        lease_ms=LEASE_MS,
        client=make_redis_client(f"redis://127.0.0.1:{free_port()}/0"),
        breaker=CircuitBreaker(),
        warn=WARN,
    )
    started = time.monotonic()
    with ExitStack() as stack:
        assert hold(stack, admission) is None
        refusal = hold(stack, admission)
    assert refusal is not None and refusal.scope == PROCESS
    assert time.monotonic() - started < 2


@pytest.fixture
def no_redis() -> Iterator[ScanAdmission]:
    yield make(None, per_process=1, total=1)


def test_without_redis_configured_the_process_bound_holds(no_redis):
    with ExitStack() as stack:
        assert hold(stack, no_redis) is None
        refusal = hold(stack, no_redis)
    assert refusal is not None and refusal.scope == PROCESS


def test_a_refusal_keeps_refusing_until_a_slot_is_likely_free(server):
    workers = [make(server, per_process=1, total=2) for _ in range(3)]
    with ExitStack() as stack:
        assert hold(stack, workers[0], "a") is None
        assert hold(stack, workers[1], "b") is None
        assert hold(stack, workers[2], "c") is not None
        assert workers[2].may_refuse("anyone")
        refusal = workers[2].refusing("anyone")
    assert refusal is not None and refusal.scope == HOSTS and refusal.retry_after >= 1
    assert not workers[0].may_refuse("anyone")


def test_giving_a_slot_back_ends_the_processs_refusals(server):
    admission = make(server, per_process=1, total=2)
    with ExitStack() as stack:
        assert hold(stack, admission, "a") is None
        assert hold(stack, admission, "b") is not None
        assert admission.may_refuse("b")
    assert not admission.may_refuse("b")
    assert admission.refusing("b") is None


def test_a_callers_own_share_refuses_that_caller_only(server):
    workers = [make(server, per_process=1, total=4) for _ in range(3)]
    with ExitStack() as stack:
        assert hold(stack, workers[0], "greedy") is None
        assert hold(stack, workers[1], "greedy") is None
        assert hold(stack, workers[2], "greedy") is not None
        assert workers[2].may_refuse("greedy")
        assert not workers[2].may_refuse("someone-else")
        assert not workers[2].may_refuse(None)
