"""The shared stats cache: one result per filter window across every worker and host.

Layout in Redis, for a key K = runstats:stats:v<N>:{<sha256>}:

- K          the envelope; PX = TTL (jittered) + grace. Freshness comes from
             Redis' own PTTL: more than `grace` left means fresh, less means
             stale, gone means a miss. No host clock is consulted.
- K:lease    SET NX PX with a unique token (redis-py's Lock), released only by
             its owner: whoever holds it runs the aggregate.
- K:gen      INCR'd by each lease winner; a result is written only when its
             generation is not older than the stored one, so an owner whose
             lease ran out can never replace a newer result.

Everyone else: with a stale value, served it at once; with none, wait (jittered
polling, retrying the lease so a dead owner is replaced after its lease
expires) up to a budget longer than the lease, then 503. Redis errors open a
circuit breaker and the per-process layer (local.py) answers instead.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import LockError, RedisError
from redis.retry import Retry

from ..errors import ServiceUnavailable
from ..metrics import (
    stats_cache_lock_waits,
    stats_cache_redis_errors,
    stats_cache_requests,
    stats_cache_unavailable,
)
from ..timefmt import format_timestamp
from .breaker import CircuitBreaker
from .envelope import Envelope, decode
from .local import LocalCache

log = logging.getLogger(__name__)

HIT, MISS, STALE, BYPASS = "hit", "miss", "stale", "bypass"

WRITE_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  -- Only an envelope that envelope.decode() accepts counts as a result to
  -- protect; anything else is undecodable (a miss) and is overwritten.
  local generation = string.match(current, '^RS1 (%d+) %d+ [%w:%.%+%-]+\\n{')
  if generation and tonumber(generation) > tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

READ_WITH_PTTL = """
return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
"""

GENERATION_LIFETIME_MS = 24 * 3600 * 1000
TTL_JITTER = 0.1


@dataclass(frozen=True)
class CacheSettings:
    ttl_ms: int
    grace_ms: int
    lease_ms: int
    wait_ms: int
    breaker_threshold: int = 3
    breaker_reset_seconds: float = 5.0
    local_entries: int = 1024


@dataclass(frozen=True)
class StatsResult:
    body: bytes
    cache: str
    max_age: int

    def headers(self) -> list[tuple[str, str]]:
        """How fresh the answer is, as every stats response says it."""
        return [("Cache-Control", f"max-age={self.max_age}"), ("X-Cache", self.cache)]


Compute = Callable[[], bytes]


class _RedisUnusable(Exception):
    pass


class _RateLimitedWarning:
    def __init__(self, interval: float = 30.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, topic: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(topic, -self.interval) < self.interval:
                return
            self._last[topic] = now
        log.warning(message, *args)


class StatsCache:
    def __init__(self, client: redis.Redis | None, settings: CacheSettings) -> None:
        self.client = client
        self.settings = settings
        self.namespace = ""
        self.local = LocalCache(settings.local_entries)
        self.breaker = CircuitBreaker(settings.breaker_threshold, settings.breaker_reset_seconds)
        self._warn = _RateLimitedWarning()
        self._write_if_newer = client.register_script(WRITE_IF_NEWER) if client else None
        self._read_with_pttl = client.register_script(READ_WITH_PTTL) if client else None

    def get(self, key: str, compute: Compute) -> StatsResult:
        key = self.namespace + key
        if self.client is None:
            result = self._from_local(key, compute, shared=False)
        elif not self.breaker.allow():
            stats_cache_redis_errors.inc()
            result = self._from_local(key, compute, shared=True)
        else:
            try:
                result = self._from_redis(key, compute)
            except _RedisUnusable:
                result = self._from_local(key, compute, shared=True)
        stats_cache_requests.labels(result=result.cache).inc()
        return result

    def fresh_hit(self, key: str) -> StatsResult | None:
        """The shared result when Redis holds a fresh one (counted as a hit); else None.

        For a caller with the full path (`get`) to fall back on: nothing here
        waits, takes a lease or computes, and a Redis error only feeds the breaker.
        """
        if self.client is None or not self.breaker.allow():
            return None
        key = self.namespace + key
        try:
            envelope, pttl = self._read(key)
        except _RedisUnusable:
            return None
        fresh = self._fresh(key, envelope, pttl)
        if fresh is not None:
            stats_cache_requests.labels(result=HIT).inc()
        return fresh

    # --- shared path -------------------------------------------------------

    def _redis(self, operation: Callable[[], Any]) -> Any:
        try:
            value = operation()
        except RedisError as exc:
            self._redis_failed(exc)
            raise _RedisUnusable from exc
        self.breaker.success()
        return value

    def _redis_failed(self, exc: Exception) -> None:
        self.breaker.failure()
        stats_cache_redis_errors.inc()
        self._warn(
            "redis",
            "stats cache: Redis unusable (%s: %s); serving from the per-process layer",
            type(exc).__name__,
            exc,
        )

    def _read(self, key: str) -> tuple[Envelope | None, int]:
        read_with_pttl = self._read_with_pttl
        assert read_with_pttl is not None
        raw, pttl = self._redis(lambda: read_with_pttl(keys=[key]))
        envelope = decode(raw)
        if raw is not None and envelope is None:
            self._warn("undecodable", "stats cache: undecodable entry at %s; recomputing", key)
        return envelope, int(pttl)

    def _remember(self, key: str, envelope: Envelope, pttl_ms: int) -> None:
        self.local.put(
            key,
            envelope.body,
            fresh_seconds=(pttl_ms - self.settings.grace_ms) / 1000,
            usable_seconds=pttl_ms / 1000,
        )

    def _fresh(self, key: str, envelope: Envelope | None, pttl_ms: int) -> StatsResult | None:
        """A hit when the stored result is fresh; any usable result is remembered locally."""
        if envelope is None or pttl_ms <= 0:
            return None
        self._remember(key, envelope, pttl_ms)
        fresh_ms = pttl_ms - self.settings.grace_ms
        return StatsResult(envelope.body, HIT, fresh_ms // 1000) if fresh_ms > 0 else None

    def _from_redis(self, key: str, compute: Compute) -> StatsResult:
        envelope, pttl = self._read(key)
        fresh = self._fresh(key, envelope, pttl)
        if fresh is not None:
            return fresh
        stale = envelope if envelope is not None and pttl > 0 else None
        lease = self._try_lease(key)
        if lease is not None:
            return self._compute_and_publish(key, lease, compute, stale)
        if stale is not None:
            return StatsResult(stale.body, STALE, 0)
        return self._wait(key, compute)

    def _try_lease(self, key: str) -> Any:
        assert self.client is not None
        lease = self.client.lock(
            f"{key}:lease",
            timeout=self.settings.lease_ms / 1000,
            blocking=False,
            thread_local=False,
        )
        return lease if self._redis(lease.acquire) else None

    def _release(self, lease: Any) -> None:
        try:
            lease.release()
        except LockError:
            self._warn("lease", "stats cache: lease expired before its owner finished")
        except RedisError as exc:
            self._redis_failed(exc)

    def _compute_and_publish(
        self, key: str, lease: Any, compute: Compute, stale: Envelope | None
    ) -> StatsResult:
        assert self.client is not None
        try:
            # Between our read and our lease, an owner may have published and
            # released: serve its result instead of running the aggregate again.
            envelope, pttl = self._read(key)
            fresh = self._fresh(key, envelope, pttl)
            if fresh is not None:
                self._release(lease)
                return fresh
            pipe = self.client.pipeline(transaction=True)
            pipe.incr(f"{key}:gen")
            pipe.pexpire(f"{key}:gen", GENERATION_LIFETIME_MS)
            generation = int(self._redis(pipe.execute)[0])
        except _RedisUnusable:
            self._release(lease)
            raise
        started = time.perf_counter()
        cached_at = datetime.now(UTC)
        try:
            body = compute()
        except Exception:
            self._release(lease)
            if stale is not None:
                self._warn("compute", "stats: aggregate failed; serving the stale result")
                return StatsResult(stale.body, STALE, 0)
            raise
        ttl_ms = self._jittered_ttl_ms()
        envelope = Envelope(
            generation,
            int((time.perf_counter() - started) * 1000),
            format_timestamp(cached_at),
            body,
        )
        life_ms = ttl_ms + self.settings.grace_ms
        self.local.put(key, body, ttl_ms / 1000, life_ms / 1000)
        write_if_newer = self._write_if_newer
        assert write_if_newer is not None
        try:
            self._redis(
                lambda: write_if_newer(keys=[key], args=[generation, envelope.encode(), life_ms])
            )
        except _RedisUnusable:
            return StatsResult(body, BYPASS, 0)
        finally:
            self._release(lease)
        return StatsResult(body, MISS, ttl_ms // 1000)

    def _wait(self, key: str, compute: Compute) -> StatsResult:
        stats_cache_lock_waits.inc()
        deadline = time.monotonic() + self.settings.wait_ms / 1000
        delay = 0.01
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))  # noqa: S311
            delay = min(delay * 1.5, 0.1)
            envelope, pttl = self._read(key)
            if envelope is not None and pttl > 0:
                self._remember(key, envelope, pttl)
                fresh_ms = pttl - self.settings.grace_ms
                if fresh_ms > 0:
                    return StatsResult(envelope.body, HIT, fresh_ms // 1000)
                return StatsResult(envelope.body, STALE, 0)
            lease = self._try_lease(key)
            if lease is not None:
                return self._compute_and_publish(key, lease, compute, None)
        stats_cache_unavailable.inc()
        raise ServiceUnavailable(
            "The stats are being computed; retry shortly.",
            retry_after=max(1, -(-self.settings.lease_ms // 1000)),
        )

    def _jittered_ttl_ms(self) -> int:
        ttl = self.settings.ttl_ms
        return ttl - int(ttl * TTL_JITTER * random.random())  # noqa: S311

    # --- per-process path --------------------------------------------------

    def _from_local(self, key: str, compute: Compute, shared: bool) -> StatsResult:
        """Serve without Redis: embedded mode (shared=False) or Redis unusable (shared=True)."""
        fresh_label = BYPASS if shared else HIT
        computed_label = BYPASS if shared else MISS
        now = self.local.clock()
        entry = self.local.get(key)
        if entry is not None and entry.fresh_seconds(now) > 0:
            return StatsResult(
                entry.body, fresh_label, 0 if shared else int(entry.fresh_seconds(now))
            )
        flight = self.local.flight(key)
        if entry is not None:
            if not flight.acquire(blocking=False):
                return StatsResult(entry.body, STALE, 0)
        elif not flight.acquire(timeout=self.settings.wait_ms / 1000):
            stats_cache_unavailable.inc()
            raise ServiceUnavailable(
                "The stats are being computed; retry shortly.",
                retry_after=max(1, -(-self.settings.lease_ms // 1000)),
            )
        try:
            now = self.local.clock()
            current = self.local.get(key)
            if current is not None and current.fresh_seconds(now) > 0:
                return StatsResult(
                    current.body, fresh_label, 0 if shared else int(current.fresh_seconds(now))
                )
            try:
                body = compute()
            except Exception:
                if current is not None:
                    self._warn("compute", "stats: aggregate failed; serving the stale result")
                    return StatsResult(current.body, STALE, 0)
                raise
            ttl_ms = self._jittered_ttl_ms()
            self.local.put(key, body, ttl_ms / 1000, (ttl_ms + self.settings.grace_ms) / 1000)
            return StatsResult(body, computed_label, 0 if shared else ttl_ms // 1000)
        finally:
            flight.release()


def make_redis_client(url: str) -> redis.Redis:
    """Short timeouts and a single retry: a sick Redis must cost milliseconds, not seconds."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=0.25,
        socket_timeout=0.25,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=0,
        client_name="runstats",
    )
