"""How many scans may run at once: per process, and across every host through Redis.

A scan (an aggregate that reads runs) holds a database connection and a core
for up to the scan timeout. Without a bound, a burst of distinct filters fills
every worker and everything else waits behind it. So a scan must first be
admitted: a slot of this process (a semaphore) and, when Redis is usable, a
slot of the deployment (a sorted set of leases that expire, so a killed worker
frees its slot; one client may hold at most a share of them). A request that
is not admitted does not wait: the cache answers it at once (stale, or 503
with a Retry-After of when a slot is likely to free, spread by how many were
refused lately), and until that slot is likely free later scans of the same
scope are refused from what this process knows (refusals.py), which the
shortcut in front of Flask answers too. Reads of maintained counts are never
asked here.

The slots' key has a hash tag of its own: on a Redis Cluster it lives in one
slot apart from every stats key, and no script touches both.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from redis.exceptions import RedisError

from ..degraded import RateLimitedWarning
from ..metrics import stats_scans_refused, stats_scans_running
from ..redis_client import RedisClient
from . import scripts
from .breaker import CircuitBreaker
from .refusals import RecentRefusals, RefusalWindows

log = logging.getLogger(__name__)

SLOTS_KEY = "runstats:scan-slots:{scan-slots}"
PROCESS, HOSTS, CLIENT = "process", "hosts", "client"
_SCOPES = {1: HOSTS, 2: CLIENT}
ANONYMOUS = "anonymous"
INITIAL_SCAN_SECONDS = 1.0
SMOOTHING = 0.2
OVERDUE_SHARE = 0.2


def user_caller(user: str) -> str:
    """The caller a token's user is, for the fair share of the slots."""
    return f"user:{user}"


def address_caller(address: str) -> str:
    """The caller an address is, when a trusted proxy says it."""
    return f"address:{address}"


@dataclass(frozen=True)
class Refusal:
    """Why a scan was not admitted, and when to try again."""

    scope: str
    retry_after: int


class ScanDurations:
    """A smoothed duration of this process's recent scans: how long a slot is usually held."""

    def __init__(self) -> None:
        self.seconds = INITIAL_SCAN_SECONDS
        self._lock = threading.Lock()

    def record(self, seconds: float) -> None:
        with self._lock:
            self.seconds += SMOOTHING * (seconds - self.seconds)


class ScanAdmission:
    def __init__(
        self,
        *,
        per_process: int,
        total: int,
        lease_ms: int,
        client: RedisClient | None,
        breaker: CircuitBreaker | None,
        warn: RateLimitedWarning,
    ) -> None:
        self.per_process = per_process
        self.total = total
        self.per_client = max(1, math.ceil(total / 2)) if total > 1 else 1
        self.lease_ms = lease_ms
        self.client = client
        self.breaker = breaker
        self.durations = ScanDurations()
        self.refusals = RecentRefusals()
        self.windows = RefusalWindows()
        self._warn = warn
        self._process_slots = threading.BoundedSemaphore(per_process)
        self._starts: dict[str, float] = {}
        self._starts_lock = threading.Lock()
        self._take = scripts.load(client, "take_scan_slot") if client is not None else None

    @contextmanager
    def admit(
        self, caller: str, shared: bool, until: float = math.inf
    ) -> Iterator[Refusal | None]:
        """Hold a slot for the block (None), or say why none was given (a Refusal).

        `shared` is False while Redis is unusable: the per-process bound alone holds then.
        A shared slot expires by `until` (time.monotonic()), the end of the key's lease, so
        that a killed owner's slot is free again when its successor takes the lease.
        """
        if not self._process_slots.acquire(blocking=False):
            yield self._refused(PROCESS, None, self._oldest_local_start(), time.monotonic())
            return
        token = uuid.uuid4().hex
        try:
            left_ms = (until - time.monotonic()) * 1000
            lease_ms = max(1, int(min(self.lease_ms, left_ms)))
            member, refusal = (
                self._take_shared_slot(caller, token, lease_ms) if shared else (None, None)
            )
            if refusal is not None:
                yield refusal
                return
            yield from self._hold(token, member)
        finally:
            self._process_slots.release()

    def _hold(self, token: str, member: str | None) -> Iterator[None]:
        started = time.monotonic()
        with self._starts_lock:
            self._starts[token] = started
        stats_scans_running.inc()
        try:
            yield None
        finally:
            stats_scans_running.dec()
            self.durations.record(time.monotonic() - started)
            with self._starts_lock:
                del self._starts[token]
            if member is not None:
                self._give_back(member)
            self.windows.reopen()

    def _take_shared_slot(
        self, caller: str, token: str, lease_ms: int
    ) -> tuple[str | None, Refusal | None]:
        """(the slot's member, None) when taken; (None, None) when Redis cannot be asked."""
        if self.client is None or self._take is None:
            return None, None
        if self.breaker is not None and not self.breaker.allow():
            return None, None
        prefix = hashlib.sha256(caller.encode("utf-8", "surrogatepass")).hexdigest()[:16] + "|"
        member = prefix + token
        try:
            answer = self._take(
                keys=[SLOTS_KEY],
                args=[member, lease_ms, self.total, self.per_client, prefix],
            )
        except RedisError as exc:
            self._redis_failed(exc)
            return None, None
        if self.breaker is not None:
            self.breaker.success()
        if int(answer[0]) == 1:
            return member, None
        now_ms, oldest_ms, scope = int(answer[1]), float(answer[2]), int(answer[3])
        scope_name = _SCOPES[scope]
        refused_caller = caller if scope_name == CLIENT else None
        return None, self._refused(scope_name, refused_caller, oldest_ms / 1000, now_ms / 1000)

    def _give_back(self, member: str) -> None:
        assert self.client is not None
        try:
            self.client.zrem(SLOTS_KEY, member)
        except RedisError as exc:
            self._redis_failed(exc)

    def _oldest_local_start(self) -> float:
        with self._starts_lock:
            return min(self._starts.values(), default=time.monotonic())

    def may_refuse(self, caller: str | None) -> bool:
        """Whether `refusing` would refuse now; counts nothing."""
        return self.windows.open_for(caller, time.monotonic()) is not None

    def refusing(self, caller: str | None) -> Refusal | None:
        """The refusal a scan for `caller` would get now, by what this process was told
        lately (refusals.py); None when a slot may be free. `caller` None: unknown here,
        only a window for every caller counts."""
        now = time.monotonic()
        window = self.windows.open_for(caller, now)
        if window is None:
            return None
        scope, left = window
        return self._refusal(scope, left)

    def _refused(self, scope: str, caller: str | None, oldest_start: float, now: float) -> Refusal:
        """A refusal just given: until the oldest running scan of the full scope is likely
        done, later scans of the same scope (and caller) will be refused too."""
        scan_seconds = self.durations.seconds
        likely_free_in = max(oldest_start + scan_seconds - now, 0.0)
        # A scan running past its expected end is still likely to run a while: refuse for
        # a short, jittered part of a scan's time rather than let every request through.
        overdue_window = scan_seconds * OVERDUE_SHARE * random.uniform(0.5, 1.0)  # noqa: S311
        until = time.monotonic() + max(likely_free_in, overdue_window)
        self.windows.close(scope, caller, until)
        self._warn(
            f"refused-{scope}",
            "stats: a scan was refused (%s bound full); answering stale or 503",
            scope,
        )
        return self._refusal(scope, likely_free_in)

    def _refusal(self, scope: str, likely_free_in: float) -> Refusal:
        """When to ask again: once a slot is likely free, spread over the time the slots
        need for everyone refused lately (jittered), so that a flood's retries do not all
        come back at once; within the lease."""
        waiting = self.refusals.add(time.monotonic())
        slots = self.per_process if scope == PROCESS else self.total
        spread = self.durations.seconds * waiting / slots
        wait = likely_free_in + random.uniform(0.0, spread)  # noqa: S311 - jitter
        retry_after = max(1, math.ceil(min(wait, self.lease_ms / 1000)))
        stats_scans_refused.labels(scope=scope).inc()
        return Refusal(scope, retry_after)

    def _redis_failed(self, exc: Exception) -> None:
        if self.breaker is not None:
            self.breaker.failure()
        self._warn(
            "admission-redis",
            "stats: scan slots unavailable in Redis (%s); the per-process bound alone holds",
            type(exc).__name__,
        )
