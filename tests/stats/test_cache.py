"""Unit tests of the stats cache (runstats_app.stats.cache) and its stores.

fakeredis stands in for Redis; two StatsCache instances sharing one
FakeServer stand in for two worker processes. Time is moved with PEXPIRE (the
cache reads freshness from Redis' PTTL) or with injected clocks, so nothing
here sleeps for a TTL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from runstats_app.errors import ServiceUnavailable
from runstats_app.redis_client import make_redis_client
from runstats_app.stats.breaker import CircuitBreaker
from runstats_app.stats.cache import CacheSettings, StatsCache
from runstats_app.stats.envelope import Envelope, decode
from runstats_app.stats.local_store import LocalStore
from runstats_app.stats.result import BYPASS, HIT, MISS, SCAN, STALE, Computed, StatsResult
from runstats_app.stats.store import Lease

from ..support.servers import free_port
from ..support.stats import hold_every_slot

SETTINGS = CacheSettings(ttl_ms=1000, grace_ms=2000, lease_ms=500, wait_ms=1500)
# Long enough that whole seconds of max-age are visible.
LONG_TTL = replace(SETTINGS, ttl_ms=10_000, grace_ms=20_000)
KEY = "runstats:stats:v2:{" + "ab" * 32 + "}"
LEASE = f"{KEY}:lease"
STALE_PTTL_MS = SETTINGS.grace_ms - 100  # past the TTL, within the grace
CACHED_AT = datetime(2026, 3, 19, 12, 0, tzinfo=UTC)


class Compute:
    """A counting aggregate: its body is b'{"call": <n>, "tag": ...}'; it can fail or block."""

    source = SCAN

    def __init__(self, tag: str = "a", *, delay: float = 0.0) -> None:
        self.tag = tag
        self.delay = delay
        self.calls = 0
        self.error: Exception | None = None
        self.gate: threading.Event | None = None
        self.started = threading.Event()
        self._lock = threading.Lock()

    def __call__(self) -> Computed:
        with self._lock:
            self.calls += 1
            call = self.calls
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return Computed(self.body(call), CACHED_AT, self.source)

    def body(self, call: int) -> bytes:
        return b'{"call": %d, "tag": "%s"}' % (call, self.tag.encode())


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingRedis(redis.Redis):
    """A client that counts every command, pipeline and lock it is asked for."""

    touches = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.touches += 1
        return super().execute_command(*args, **options)

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        self.touches += 1
        return super().pipeline(*args, **kwargs)

    def lock(self, *args: Any, **kwargs: Any) -> Any:
        self.touches += 1
        return super().lock(*args, **kwargs)


def unreachable_redis() -> redis.Redis:
    """The app's own client factory, pointed at a port nobody listens on."""
    return make_redis_client(f"redis://127.0.0.1:{free_port()}/0")


def stored(client: redis.Redis, key: str = KEY) -> Envelope | None:
    return decode(client.hget(key, "e"))


def stored_generation(client: redis.Redis, key: str = KEY) -> int:
    return int(client.hget(key, "g"))


def in_thread(function: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = function()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def joined(thread: threading.Thread, outcome: dict[str, Any]) -> Any:
    thread.join(10)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def make_cache(
    server: fakeredis.FakeServer, settings: CacheSettings = SETTINGS, key_prefix: str = ""
) -> StatsCache:
    return StatsCache(settings, fakeredis.FakeRedis(server=server), key_prefix)


def shared(cache: StatsCache) -> Any:
    assert cache.shared is not None
    return cache.shared


@pytest.fixture
def cache(server: fakeredis.FakeServer) -> StatsCache:
    return make_cache(server)


@pytest.fixture
def other(server: fakeredis.FakeServer) -> StatsCache:
    """A second worker process sharing the same Redis."""
    return make_cache(server)


@pytest.fixture
def held_lease(redis_client: fakeredis.FakeRedis) -> Iterator[Any]:
    """The key's lease, held by some other process for longer than any test waits."""
    lease = redis_client.lock(LEASE, timeout=30, blocking=False, thread_local=False)
    assert lease.acquire()
    yield lease
    if lease.owned():
        lease.release()


# --- fresh results --------------------------------------------------------------------


def test_cold_key_is_a_miss_that_computes_once(cache, redis_client):
    compute = Compute()
    result = cache.get(KEY, compute)
    assert (result.cache, result.body, compute.calls) == (MISS, compute.body(1), 1)
    envelope = stored(redis_client)
    assert envelope is not None and envelope.body == compute.body(1)


def test_second_request_is_a_hit_without_computing(cache):
    compute = Compute()
    cache.get(KEY, compute)
    result = cache.get(KEY, compute)
    assert (result.cache, result.body, compute.calls) == (HIT, compute.body(1), 1)


def test_result_published_by_one_process_is_a_hit_in_another(cache, other):
    first, second = Compute("a"), Compute("b")
    cache.get(KEY, first)
    result = other.get(KEY, second)
    assert (result.cache, result.body, second.calls) == (HIT, first.body(1), 0)


def test_miss_max_age_is_the_jittered_ttl_in_whole_seconds(server):
    result = make_cache(server, LONG_TTL).get(KEY, Compute())
    assert result.max_age in (9, 10)  # TTL minus up to 10 % jitter


def test_hit_max_age_is_the_time_left_before_the_ttl(server, redis_client):
    cache = make_cache(server, LONG_TTL)
    cache.get(KEY, Compute())
    redis_client.pexpire(KEY, LONG_TTL.grace_ms + 2500)
    assert cache.get(KEY, Compute()).max_age == 2


def test_entry_is_stored_for_ttl_plus_grace(cache, redis_client):
    cache.get(KEY, Compute())
    pttl = redis_client.pttl(KEY)
    low = SETTINGS.grace_ms + SETTINGS.ttl_ms * 0.9 - 50
    assert low <= pttl <= SETTINGS.grace_ms + SETTINGS.ttl_ms


def test_stored_result_records_generation_cached_at_and_source(cache, redis_client):
    cache.get(KEY, Compute())
    envelope = stored(redis_client)
    assert envelope is not None
    assert stored_generation(redis_client) == int(redis_client.get(f"{KEY}:gen"))
    assert (envelope.cached_at, envelope.source) == ("2026-03-19T12:00:00Z", SCAN)


def test_answers_carry_the_source_of_the_computation_hits_included(cache, other):
    compute = Compute()
    compute.source = "counts"
    miss = cache.get(KEY, compute)
    hit = other.get(KEY, Compute())
    assert (miss.source, hit.source) == ("counts", "counts")
    assert ("X-Stats-Source", "counts") in hit.headers()


# --- past the TTL ---------------------------------------------------------------------


def test_past_ttl_the_lease_winner_recomputes(cache, redis_client):
    compute = Compute()
    cache.get(KEY, compute)
    redis_client.pexpire(KEY, STALE_PTTL_MS)
    result = cache.get(KEY, compute)
    assert (result.cache, result.body, compute.calls) == (MISS, compute.body(2), 2)
    assert redis_client.pttl(KEY) > SETTINGS.grace_ms


def test_past_ttl_readers_get_stale_at_once_while_another_process_holds_the_lease(
    cache, redis_client
):
    compute = Compute()
    cache.get(KEY, compute)
    redis_client.pexpire(KEY, STALE_PTTL_MS)
    redis_client.set(LEASE, b"another-process", px=30_000)
    started = time.monotonic()
    result = cache.get(KEY, compute)
    assert time.monotonic() - started < 0.2
    assert (result.cache, result.max_age, result.body) == (STALE, 0, compute.body(1))
    assert compute.calls == 1


def test_past_ttl_plus_grace_the_old_result_is_never_served(cache, redis_client):
    compute = Compute()
    cache.get(KEY, compute)
    redis_client.pexpire(KEY, 1)
    time.sleep(0.01)
    # Another process holds the lease briefly: a reader must wait, not serve the old body.
    redis_client.set(LEASE, b"someone-else", px=150)
    result = cache.get(KEY, compute)
    assert (result.cache, result.body) == (MISS, compute.body(2))


# --- waiting for someone else's result ---------------------------------------------------


def _publish(cache: StatsCache, generation: int, body: bytes, lease: Any = None) -> None:
    """Publish as the holder of `lease` (a redis-py Lock), or of a lease taken for it."""
    envelope = Envelope(1, "2026-01-01T00:00:00Z", SCAN, body)
    fresh = SETTINGS.ttl_ms
    holder = lease or shared(cache).client.lock(LEASE, timeout=30, thread_local=False)
    if lease is None:
        assert holder.acquire(blocking=False)
    token = holder.local.token.decode()
    shared(cache).publish(
        KEY, Lease(generation, token), envelope, fresh, fresh + SETTINGS.grace_ms
    )
    if lease is None:
        holder.release()


def test_reader_without_a_value_waits_and_gets_a_hit_when_the_owner_publishes(
    cache, other, held_lease
):
    mine = Compute("mine")

    def publish_later() -> bool:
        time.sleep(0.2)
        _publish(other, 1, b'{"owner": 1}', held_lease)
        held_lease.release()
        return True

    thread, outcome = in_thread(publish_later)
    result = cache.get(KEY, mine)
    assert joined(thread, outcome)
    assert (result.cache, result.body, mine.calls) == (HIT, b'{"owner": 1}', 0)


def test_reader_without_a_value_gets_503_when_the_lease_never_frees(server, held_lease):
    settings = replace(SETTINGS, wait_ms=600)
    compute = Compute()
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as raised:
        make_cache(server, settings).get(KEY, compute)
    assert time.monotonic() - started >= settings.wait_ms / 1000
    assert raised.value.retry_after >= 1
    assert compute.calls == 0


def test_dead_owner_is_replaced_after_its_lease_expires_with_exactly_one_compute(
    server, redis_client
):
    lease_px = 300
    redis_client.set(LEASE, b"crashed-owner", px=lease_px)
    workers = [make_cache(server), make_cache(server)]
    computes = [Compute("one", delay=0.05), Compute("two", delay=0.05)]
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda i: workers[i].get(KEY, computes[i]), range(2)))
    assert time.monotonic() - started >= (lease_px - 50) / 1000
    assert sum(c.calls for c in computes) == 1
    assert sorted(r.cache for r in results) == [HIT, MISS]
    assert results[0].body == results[1].body
    assert redis_client.get(LEASE) is None


def test_lease_winner_serves_a_result_published_since_its_read_without_recomputing(
    cache, other, monkeypatch
):
    """A reader that misses, then wins a lease its owner just freed, must not recompute."""
    first, second = Compute("first"), Compute("second")
    take_lease = shared(other).lease

    @contextmanager
    def owner_finishes_between_read_and_lease(key: str) -> Iterator[Any]:
        assert cache.get(KEY, first).cache == MISS
        with take_lease(key) as lease:
            yield lease

    monkeypatch.setattr(shared(other), "lease", owner_finishes_between_read_and_lease)
    result = other.get(KEY, second)
    assert (result.cache, result.body, second.calls) == (HIT, first.body(1), 0)


# --- generations -------------------------------------------------------------------


def test_publishing_an_older_generation_after_a_newer_one_keeps_the_newer(cache, redis_client):
    _publish(cache, 5, b'{"gen": 5}')
    _publish(cache, 3, b'{"gen": 3}')
    envelope = stored(redis_client)
    assert envelope is not None and envelope.body == b'{"gen": 5}'
    assert stored_generation(redis_client) == 5


def test_publishing_a_newer_generation_replaces_the_older(cache, redis_client):
    _publish(cache, 3, b'{"gen": 3}')
    _publish(cache, 5, b'{"gen": 5}')
    envelope = stored(redis_client)
    assert envelope is not None and envelope.body == b'{"gen": 5}'
    assert stored_generation(redis_client) == 5


def _slow_owner_overtaken(
    server: fakeredis.FakeServer, overtake: Callable[[], Any]
) -> tuple[StatsResult, Compute]:
    """Owner A's lease expires mid-compute; `overtake` runs; then A finishes."""
    settings = replace(SETTINGS, lease_ms=150)
    slow = Compute("slow")
    slow.gate = threading.Event()
    thread, outcome = in_thread(lambda: make_cache(server, settings).get(KEY, slow))
    assert slow.started.wait(5)
    time.sleep(settings.lease_ms / 1000 + 0.05)
    overtake()
    slow.gate.set()
    return joined(thread, outcome), slow


def test_slow_owner_whose_lease_expired_never_overwrites_the_newer_result(server, redis_client):
    fast = Compute("fast")

    def second_owner_publishes() -> None:
        assert make_cache(server).get(KEY, fast).cache == MISS

    slow_result, _ = _slow_owner_overtaken(server, second_owner_publishes)
    envelope = stored(redis_client)
    assert envelope is not None
    assert envelope.body == fast.body(1)
    assert stored_generation(redis_client) == 2
    assert slow_result.body != envelope.body


def test_slow_owner_release_leaves_the_second_owner_lease_in_place(server, redis_client):
    second = redis_client.lock(LEASE, timeout=30, blocking=False, thread_local=False)

    def second_owner_takes_the_expired_lease() -> None:
        assert second.acquire()

    _slow_owner_overtaken(server, second_owner_takes_the_expired_lease)
    assert second.owned()
    second.release()


# --- bad values and failing computes --------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        b"garbage",
        b"RS2 1 2026-01-01T00:00:00Z\n{}",
        b"RS2 x 2026-01-01T00:00:00Z scan\n{}",
        b"RS1 1 2 2026-01-01T00:00:00Z\n{}",
        b"RS2 2 2026-01-01T00:00:00Z nowhere\n{}",
        b"RS2 2 2026-01-01T00:00:00Z scan\nnot json",
        b"RS2 2 2026-01-01T00:00:00Z scan {}",
    ],
)
def test_undecodable_stored_value_is_recomputed_and_overwritten(cache, redis_client, garbage):
    redis_client.hset(KEY, mapping={"g": 0, "e": garbage})
    redis_client.pexpire(KEY, SETTINGS.ttl_ms + SETTINGS.grace_ms)
    compute = Compute()
    result = cache.get(KEY, compute)
    assert (result.cache, result.body, compute.calls) == (MISS, compute.body(1), 1)
    envelope = stored(redis_client)
    assert envelope is not None and envelope.body == compute.body(1)


def test_compute_failing_with_a_stale_value_serves_the_stale_body(cache, redis_client):
    compute = Compute()
    cache.get(KEY, compute)
    redis_client.pexpire(KEY, STALE_PTTL_MS)
    compute.error = RuntimeError("database down")
    result = cache.get(KEY, compute)
    assert (result.cache, result.max_age, result.body) == (STALE, 0, compute.body(1))


def test_compute_failing_with_a_stale_value_caches_nothing(cache, redis_client):
    compute = Compute()
    cache.get(KEY, compute)
    redis_client.pexpire(KEY, STALE_PTTL_MS)
    before = redis_client.hgetall(KEY)
    compute.error = RuntimeError("database down")
    cache.get(KEY, compute)
    assert redis_client.hgetall(KEY) == before
    assert redis_client.pttl(KEY) <= STALE_PTTL_MS
    assert redis_client.get(LEASE) is None


def test_compute_failing_with_nothing_cached_propagates_and_caches_nothing(cache, redis_client):
    compute = Compute()
    compute.error = RuntimeError("database down")
    with pytest.raises(RuntimeError, match="database down"):
        cache.get(KEY, compute)
    assert not redis_client.exists(KEY)
    assert redis_client.get(LEASE) is None
    assert cache.local.read(KEY) is None


def test_after_a_failed_compute_the_next_request_computes_again(cache):
    compute = Compute()
    compute.error = RuntimeError("database down")
    with pytest.raises(RuntimeError):
        cache.get(KEY, compute)
    compute.error = None
    result = cache.get(KEY, compute)
    assert (result.cache, compute.calls) == (MISS, 2)


# --- Redis unusable -----------------------------------------------------------------------


def test_unreachable_redis_answers_bypass_with_max_age_0():
    compute = Compute()
    result = StatsCache(SETTINGS, unreachable_redis()).get(KEY, compute)
    assert (result.cache, result.max_age, result.body) == (BYPASS, 0, compute.body(1))


def test_unreachable_redis_computes_once_per_ttl_per_process():
    cache = StatsCache(SETTINGS, unreachable_redis())
    compute = Compute()
    results = [cache.get(KEY, compute) for _ in range(5)]
    assert compute.calls == 1
    assert {r.cache for r in results} == {BYPASS}
    assert {r.body for r in results} == {compute.body(1)}


def test_unreachable_redis_computes_once_for_concurrent_requests():
    cache = StatsCache(replace(SETTINGS, breaker_threshold=100), unreachable_redis())
    compute = Compute()
    compute.gate = threading.Event()
    first = in_thread(lambda: cache.get(KEY, compute))
    assert compute.started.wait(5)
    second = in_thread(lambda: cache.get(KEY, compute))
    time.sleep(0.2)
    assert second[0].is_alive(), "the second request should be waiting for the first"
    compute.gate.set()
    results = [joined(*first), joined(*second)]
    assert compute.calls == 1
    assert [r.cache for r in results] == [BYPASS, BYPASS]


def test_unreachable_redis_recomputes_after_the_ttl():
    clock = FakeClock()
    cache = StatsCache(SETTINGS, unreachable_redis(), local=LocalStore(clock=clock))
    compute = Compute()
    cache.get(KEY, compute)
    clock.advance(SETTINGS.ttl_ms / 1000)
    assert cache.get(KEY, compute).body == compute.body(2)


def test_breaker_opens_after_the_threshold_and_later_requests_skip_redis():
    client = CountingRedis(
        port=free_port(), socket_connect_timeout=0.1, retry=Retry(NoBackoff(), 0)
    )
    cache = StatsCache(SETTINGS, client)
    for _ in range(SETTINGS.breaker_threshold):
        cache.get(KEY, Compute())
    assert shared(cache).breaker.is_open
    touches = client.touches
    assert touches > 0
    result = cache.get(KEY, Compute())
    assert result.cache == BYPASS
    assert client.touches == touches


def test_after_the_breaker_reset_time_a_working_redis_is_used_again(server, redis_client):
    cache = make_cache(server)
    clock = FakeClock()
    shared(cache).breaker = CircuitBreaker(
        SETTINGS.breaker_threshold, SETTINGS.breaker_reset_seconds, clock=clock
    )
    server.connected = False
    for _ in range(SETTINGS.breaker_threshold):
        assert cache.get(KEY, Compute()).cache == BYPASS
    server.connected = True
    assert cache.get(KEY, Compute()).cache == BYPASS  # still open: Redis not tried
    assert not redis_client.exists(KEY)
    clock.advance(SETTINGS.breaker_reset_seconds)
    result = cache.get(KEY, Compute("back"))
    assert result.cache == MISS
    assert stored(redis_client) is not None
    assert not shared(cache).breaker.is_open


def test_redis_failing_while_publishing_answers_bypass(cache, server):
    compute = Compute()

    class RedisDies:
        source = SCAN

        def __call__(self) -> Computed:
            server.connected = False
            return compute()

    result = cache.get(KEY, RedisDies())
    server.connected = True
    assert (result.cache, result.max_age, result.body) == (BYPASS, 0, compute.body(1))


# --- scan admission ----------------------------------------------------------------------------


@pytest.fixture
def busy(cache: StatsCache) -> Iterator[None]:
    """Every scan slot of this process is taken by another request."""
    with cache.admission.admit("someone", shared=True) as refusal:
        assert refusal is None
        yield


def test_a_scan_not_admitted_answers_the_stale_result_without_computing(cache, redis_client):
    compute = Compute()
    cache.get(KEY, compute)
    redis_client.pexpire(KEY, STALE_PTTL_MS)
    with cache.admission.admit("someone", shared=True):
        result = cache.get(KEY, compute)
    assert (result.cache, result.body, compute.calls) == (STALE, compute.body(1), 1)


def test_a_scan_not_admitted_without_a_result_is_503_at_once(cache, busy, redis_client):
    compute = Compute()
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as raised:
        cache.get(KEY, compute)
    assert time.monotonic() - started < 0.2
    assert raised.value.retry_after >= 1
    assert compute.calls == 0
    assert redis_client.get(LEASE) is None


def test_a_refused_key_is_computed_once_a_slot_frees(cache):
    compute = Compute()
    with cache.admission.admit("someone", shared=True), pytest.raises(ServiceUnavailable):
        cache.get(KEY, compute)
    result = cache.get(KEY, compute)
    assert (result.cache, compute.calls) == (MISS, 1)


def test_while_scans_are_refused_a_scan_is_refused_before_taking_its_lease(
    cache, server, redis_client, monkeypatch
):
    with hold_every_slot(cache, fakeredis.FakeRedis(server=server)):
        with pytest.raises(ServiceUnavailable):
            cache.get(KEY, Compute())
        leases = []
        monkeypatch.setattr(shared(cache), "lease", lambda key: leases.append(key))
        with pytest.raises(ServiceUnavailable) as refused:
            cache.get(f"{KEY}-another", Compute())
    assert leases == []
    assert refused.value.retry_after >= 1


def test_a_refused_key_with_a_result_is_answered_stale_before_taking_its_lease(
    cache, server, redis_client, monkeypatch
):
    compute = Compute()
    cache.get(KEY, compute)
    redis_client.pexpire(KEY, STALE_PTTL_MS)
    with hold_every_slot(cache, fakeredis.FakeRedis(server=server)):
        with pytest.raises(ServiceUnavailable):
            cache.get(f"{KEY}-another", Compute())
        monkeypatch.setattr(shared(cache), "lease", lambda key: pytest.fail("lease taken"))
        result = cache.get(KEY, compute)
    assert (result.cache, compute.calls) == (STALE, 1)


def test_reading_maintained_counts_needs_no_scan_slot(cache, busy):
    compute = Compute()
    compute.source = "counts"
    result = cache.get(KEY, compute)
    assert (result.cache, result.source, compute.calls) == (MISS, "counts", 1)


def test_a_waiter_that_wins_the_lease_but_is_not_admitted_gets_503_at_once(server, redis_client):
    redis_client.set(LEASE, b"owner-that-dies", px=200)
    cache = make_cache(server)
    compute = Compute()
    with cache.admission.admit("someone", shared=True):
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            cache.get(KEY, compute)
    assert time.monotonic() - started < 1.0
    assert compute.calls == 0


def test_while_redis_is_unusable_the_process_bound_still_holds():
    cache = StatsCache(SETTINGS, unreachable_redis())
    compute = Compute()
    with cache.admission.admit("someone", shared=False), pytest.raises(ServiceUnavailable):
        cache.get(KEY, compute)
    assert compute.calls == 0


# --- embedded mode (no Redis) ----------------------------------------------------------------


@pytest.fixture
def embedded() -> tuple[StatsCache, FakeClock]:
    clock = FakeClock()
    return StatsCache(LONG_TTL, local=LocalStore(clock=clock)), clock


def test_embedded_cold_key_is_a_miss_then_a_hit(embedded):
    cache, _ = embedded
    compute = Compute()
    first, second = cache.get(KEY, compute), cache.get(KEY, compute)
    assert (first.cache, second.cache, compute.calls) == (MISS, HIT, 1)
    assert first.max_age > 0 and second.max_age > 0


def test_embedded_past_ttl_within_grace_is_stale_while_another_thread_computes(embedded):
    cache, clock = embedded
    compute = Compute()
    cache.get(KEY, compute)
    clock.advance(LONG_TTL.ttl_ms / 1000)
    with cache.local.lease(KEY) as lease:
        assert lease is not None
        result = cache.get(KEY, compute)
    assert (result.cache, result.max_age, result.body) == (STALE, 0, compute.body(1))


def test_embedded_past_ttl_with_nobody_computing_recomputes(embedded):
    cache, clock = embedded
    compute = Compute()
    cache.get(KEY, compute)
    clock.advance(LONG_TTL.ttl_ms / 1000)
    result = cache.get(KEY, compute)
    assert (result.cache, result.body) == (MISS, compute.body(2))


def test_embedded_past_ttl_plus_grace_the_old_result_is_gone(embedded):
    cache, clock = embedded
    compute = Compute()
    cache.get(KEY, compute)
    clock.advance((LONG_TTL.ttl_ms + LONG_TTL.grace_ms) / 1000)
    compute.error = RuntimeError("database down")
    with pytest.raises(RuntimeError):
        cache.get(KEY, compute)
    assert cache.local.read(KEY) is None


def test_embedded_compute_failing_within_grace_serves_the_stale_body(embedded):
    cache, clock = embedded
    compute = Compute()
    cache.get(KEY, compute)
    clock.advance(LONG_TTL.ttl_ms / 1000)
    compute.error = RuntimeError("database down")
    result = cache.get(KEY, compute)
    assert (result.cache, result.body) == (STALE, compute.body(1))


def test_key_prefix_prefixes_the_redis_keys(server, redis_client):
    make_cache(server, key_prefix="test-ns:").get(KEY, Compute())
    assert redis_client.exists(f"test-ns:{KEY}")
    assert not redis_client.exists(KEY)


# --- CircuitBreaker --------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(threshold=3, reset_after=5.0, clock=clock)


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.failure()


def test_breaker_stays_closed_below_the_threshold(breaker):
    fail(breaker, 2)
    assert breaker.allow() and not breaker.is_open


def test_breaker_opens_at_the_threshold(breaker):
    fail(breaker, 3)
    assert breaker.is_open and not breaker.allow()


def test_breaker_counts_only_consecutive_failures(breaker):
    fail(breaker, 2)
    breaker.success()
    fail(breaker, 2)
    assert breaker.allow()


def test_breaker_stays_open_until_the_reset_time(breaker, clock):
    fail(breaker, 3)
    clock.advance(4.9)
    assert not breaker.allow()


def test_breaker_lets_exactly_one_probe_through_after_the_reset_time(breaker, clock):
    fail(breaker, 3)
    clock.advance(5.0)
    assert [breaker.allow(), breaker.allow()] == [True, False]


def test_breaker_closes_when_the_probe_succeeds(breaker, clock):
    fail(breaker, 3)
    clock.advance(5.0)
    breaker.allow()
    breaker.success()
    assert breaker.allow() and breaker.allow() and not breaker.is_open


def test_breaker_reopens_for_another_reset_time_when_the_probe_fails(breaker, clock):
    fail(breaker, 3)
    clock.advance(5.0)
    breaker.allow()
    breaker.failure()
    clock.advance(4.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow()


# --- LocalStore -------------------------------------------------------------------------------


def _envelope(body: bytes) -> Envelope:
    return Envelope(1, "2026-01-01T00:00:00Z", SCAN, body)


def test_local_store_evicts_the_least_recently_used_entry(clock):
    local = LocalStore(max_entries=2, clock=clock)
    local.keep("a", _envelope(b"A"), 10_000, 20_000)
    local.keep("b", _envelope(b"B"), 10_000, 20_000)
    local.read("a")
    local.keep("c", _envelope(b"C"), 10_000, 20_000)
    assert local.read("b") is None
    assert local.read("a") is not None and local.read("c") is not None


def test_local_store_overwriting_a_key_does_not_evict(clock):
    local = LocalStore(max_entries=2, clock=clock)
    local.keep("a", _envelope(b"A"), 10_000, 20_000)
    local.keep("b", _envelope(b"B"), 10_000, 20_000)
    local.keep("b", _envelope(b"B2"), 10_000, 20_000)
    entry = local.read("b")
    assert local.read("a") is not None and entry is not None and entry.envelope.body == b"B2"


def test_local_entry_is_fresh_until_its_fresh_deadline(clock):
    local = LocalStore(clock=clock)
    local.keep("a", _envelope(b"A"), 10_000, 20_000)
    clock.advance(9.5)
    entry = local.read("a")
    assert entry is not None and entry.fresh_ms == 500
    clock.advance(0.5)
    entry = local.read("a")
    assert entry is not None and entry.fresh_ms <= 0


def test_local_entry_is_usable_until_its_usable_deadline(clock):
    local = LocalStore(clock=clock)
    local.keep("a", _envelope(b"A"), 10_000, 20_000)
    clock.advance(19.9)
    assert local.read("a") is not None
    clock.advance(0.1)
    assert local.read("a") is None


def test_local_lease_is_held_by_one_taker_at_a_time_per_key(clock):
    local = LocalStore(clock=clock)
    with local.lease("a") as first, local.lease("a") as second, local.lease("b") as other_key:
        assert first is not None and second is None and other_key is not None
    with local.lease("a") as again:
        assert again is not None


def test_local_clear_forgets_every_entry(clock):
    local = LocalStore(clock=clock)
    local.keep("a", _envelope(b"A"), 10_000, 20_000)
    local.clear()
    assert local.read("a") is None
