"""Results shared by every worker and host, in Redis.

For a stats key K = runstats:stats:v<N>:{<sha256>} (the braces put all of
K's keys in one Redis Cluster slot):

- K          a hash {g: generation, e: envelope}; PX = TTL (jittered) + grace.
             Freshness comes from Redis' own PTTL: more than `grace` left
             means fresh, less means stale, gone means a miss. No host clock
             is consulted.
- K:lease    SET NX PX with a unique token (redis-py's Lock), released only by
             its owner: whoever holds it runs the aggregate, and only while it
             holds it may it write K.
- K:gen      INCR'd by each lease winner, and never below K's generation. A
             result is written only when its generation is not older than the
             stored one.

So an owner whose lease ran out can never replace a newer result. With
Sentinel, a failover may lose the latest writes (replication is asynchronous):
a lost lease frees the key (a new owner computes), an owner whose lease was
lost writes nothing, and a lost counter restarts above the stored result's
generation. A result that survived is one computed within its TTL, as always.

Every usable result read or written is also kept in the local store, the
last-good copy a worker answers from while Redis is unusable. Redis errors
feed a circuit breaker; while it is open, Redis is not tried at all.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from redis.exceptions import LockError, RedisError

from ..degraded import RateLimitedWarning
from ..metrics import stats_cache_redis_errors
from ..redis_client import RedisClient
from . import scripts
from .breaker import CircuitBreaker
from .envelope import Envelope, decode
from .local_store import LocalStore
from .store import Entry, Lease, LeaseScope, StoreUnavailable

log = logging.getLogger(__name__)

GENERATION_LIFETIME_MS = 24 * 3600 * 1000


class RedisStore:
    def __init__(
        self,
        client: RedisClient,
        *,
        grace_ms: int,
        lease_ms: int,
        mirror: LocalStore,
        breaker: CircuitBreaker,
        warn: RateLimitedWarning,
    ) -> None:
        self.client = client
        self.grace_ms = grace_ms
        self.lease_ms = lease_ms
        self.mirror = mirror
        self.breaker = breaker
        self._warn = warn
        self._read_entry = scripts.load(client, "read_entry")
        self._next_generation = scripts.load(client, "next_generation")
        self._write_if_newer = scripts.load(client, "write_if_newer")

    def read(self, key: str) -> Entry | None:
        raw, pttl = self._call(lambda: self._read_entry(keys=[key]))
        envelope = decode(raw)
        if envelope is None:
            if raw is not None:
                self._warn("undecodable", "stats cache: undecodable entry at %s; recomputing", key)
            return None
        pttl = int(pttl)
        if pttl <= 0:
            return None
        entry = Entry(envelope, pttl - self.grace_ms, pttl)
        self.mirror.keep(key, envelope, entry.fresh_ms, entry.usable_ms)
        return entry

    @contextmanager
    def lease(self, key: str) -> LeaseScope:
        lock = self.client.lock(
            f"{key}:lease", timeout=self.lease_ms / 1000, blocking=False, thread_local=False
        )
        token = uuid.uuid4().hex
        ends_at = time.monotonic() + self.lease_ms / 1000
        if not self._call(lambda: lock.acquire(token=token)):
            yield None
            return
        try:
            generation = self._call(
                lambda: self._next_generation(
                    keys=[key, f"{key}:gen"], args=[GENERATION_LIFETIME_MS]
                )
            )
            yield Lease(int(generation), token, ends_at)
        finally:
            self._release(lock)

    def publish(
        self, key: str, lease: Lease, envelope: Envelope, fresh_ms: int, life_ms: int
    ) -> None:
        self.mirror.keep(key, envelope, fresh_ms, life_ms)
        encoded = envelope.encode()
        self._call(
            lambda: self._write_if_newer(
                keys=[key, f"{key}:lease"],
                args=[lease.generation, encoded, life_ms, lease.token],
            )
        )

    def _release(self, lock: Any) -> None:
        try:
            lock.release()
        except LockError:
            self._warn("lease", "stats cache: a lease expired before its owner finished")
        except RedisError as exc:
            self._failed(exc)

    def _call(self, operation: Callable[[], Any]) -> Any:
        if not self.breaker.allow():
            stats_cache_redis_errors.inc()
            raise StoreUnavailable("the Redis circuit breaker is open")
        try:
            value = operation()
        except RedisError as exc:
            self._failed(exc)
            raise StoreUnavailable(str(exc)) from exc
        self.breaker.success()
        return value

    def _failed(self, exc: Exception) -> None:
        self.breaker.failure()
        stats_cache_redis_errors.inc()
        self._warn(
            "redis",
            "stats cache: Redis unusable (%s: %s); answering from this process",
            type(exc).__name__,
            exc,
        )
