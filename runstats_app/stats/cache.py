"""The stats cache: one result per filter window, one computation per key at a time.

One state machine serves every store (store.py). For a key:

- a fresh stored result is answered at once (a hit);
- otherwise whoever takes the key's lease computes, publishes and answers (a
  miss), after checking that nobody published since it looked; a scan must
  also be admitted (admission.py), else the request is answered at once,
  stale when it can be, else 503;
- everyone else answers the stale result at once when there is one, or waits
  (jittered polling, retrying the lease so a dead owner is replaced once its
  lease expires) up to a budget longer than the lease, then 503.

With Redis configured the shared store is used; when it is unusable the same
machine runs on this process's store and labels its answers `bypass`: one
computation per key per TTL per process. Without Redis the local store is
the cache, labelled like a shared one.
"""

from __future__ import annotations

import logging
import random
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from ..degraded import RateLimitedWarning
from ..errors import ServiceUnavailable
from ..metrics import stats_cache_lock_waits, stats_cache_requests, stats_cache_unavailable
from ..redis_client import RedisClient
from ..timefmt import format_timestamp
from .admission import ANONYMOUS, Refusal, ScanAdmission
from .breaker import CircuitBreaker
from .envelope import Envelope
from .local_store import LocalStore
from .redis_store import RedisStore
from .result import BYPASS, HIT, MISS, SCAN, STALE, Computation, Computed, StatsResult
from .store import Entry, Lease, Store, StoreUnavailable

log = logging.getLogger(__name__)

TTL_JITTER = 0.1
FIRST_POLL_SECONDS = 0.01
LONGEST_POLL_SECONDS = 0.1
REFUSED_MESSAGE = "Too many stats computations are running; retry shortly."


@dataclass(frozen=True)
class CacheSettings:
    ttl_ms: int
    grace_ms: int
    lease_ms: int
    wait_ms: int
    breaker_threshold: int = 3
    breaker_reset_seconds: float = 5.0
    local_entries: int = 1024
    scans_per_process: int = 1
    scans_total: int = 2


@dataclass(frozen=True)
class _Labels:
    """How answers from one store are labelled: bypassing ones carry no max-age."""

    fresh: str
    computed: str
    max_age: bool


_SHARED = _Labels(HIT, MISS, max_age=True)
_BYPASSING = _Labels(BYPASS, BYPASS, max_age=False)


@dataclass(frozen=True)
class _Request:
    key: str
    work: Computation
    caller: str


class StatsCache:
    def __init__(
        self,
        settings: CacheSettings,
        client: RedisClient | None = None,
        key_prefix: str = "",
        local: LocalStore | None = None,
    ) -> None:
        self.settings = settings
        self.key_prefix = key_prefix
        self.warn = RateLimitedWarning(log)
        self.local = local or LocalStore(settings.local_entries)
        self.shared: RedisStore | None = None
        breaker = None
        if client is not None:
            breaker = CircuitBreaker(settings.breaker_threshold, settings.breaker_reset_seconds)
            self.shared = RedisStore(
                client,
                grace_ms=settings.grace_ms,
                lease_ms=settings.lease_ms,
                mirror=self.local,
                breaker=breaker,
                warn=self.warn,
            )
        self.admission = ScanAdmission(
            per_process=settings.scans_per_process,
            total=settings.scans_total,
            lease_ms=settings.lease_ms,
            client=client,
            breaker=breaker,
            warn=self.warn,
        )

    def get(self, key: str, computation: Computation, caller: str = ANONYMOUS) -> StatsResult:
        """The answer for `key`; `caller` identifies who asks, for a fair share of the scans."""
        request = _Request(self.key_prefix + key, computation, caller)
        if self.shared is None:
            result = self._serve(self.local, _SHARED, request)
        else:
            try:
                result = self._serve(self.shared, _SHARED, request)
            except StoreUnavailable:
                result = self._serve(self.local, _BYPASSING, request)
        stats_cache_requests.labels(result=result.cache).inc()
        return result

    def early_answer(
        self, key: str, scans: bool, caller: str | None
    ) -> StatsResult | Refusal | None:
        """What `get` would answer, when one Redis read can tell: a fresh hit; or, for a
        key whose computation would scan while this process's scans are being refused
        (admission.refusing), the stale result or the refusal (answered 503). None: ask
        `get`. Nothing here waits, takes a lease or computes, and a Redis error only
        feeds the breaker."""
        if self.shared is None:
            return None
        prefixed = self.key_prefix + key
        try:
            entry = self.shared.read(prefixed)
        except StoreUnavailable:
            return None
        if entry is not None and entry.fresh_ms > 0:
            stats_cache_requests.labels(result=HIT).inc()
            return self._fresh(entry, _SHARED)
        if not scans:
            return None
        refusal = self.admission.refusing(caller)
        if refusal is None:
            return None
        answer = self._refusal_answer(refusal, entry or self._last_good(self.shared, prefixed))
        if isinstance(answer, StatsResult):
            stats_cache_requests.labels(result=answer.cache).inc()
        return answer

    def _serve(self, store: Store, labels: _Labels, request: _Request) -> StatsResult:
        entry = store.read(request.key)
        if entry is not None and entry.fresh_ms > 0:
            return self._fresh(entry, labels)
        refusal = self._refused_at_once(request)
        if refusal is not None:
            return self._refused(refusal, entry or self._last_good(store, request.key))
        with store.lease(request.key) as lease:
            if lease is not None:
                return self._compute(store, labels, request, lease, entry)
        if entry is not None:
            return _stale(entry)
        return self._wait(store, labels, request)

    def _compute(
        self, store: Store, labels: _Labels, request: _Request, lease: Lease, stale: Entry | None
    ) -> StatsResult:
        key, work = request.key, request.work
        # Between our read and our lease an owner may have published and released:
        # answer its result instead of running the aggregate again.
        current = store.read(key)
        if current is not None and current.fresh_ms > 0:
            return self._fresh(current, labels)
        stale = current or stale or self._last_good(store, key)
        started = time.perf_counter()
        with self._admitted(request, store is self.shared, lease) as refusal:
            if refusal is not None:
                return self._refused(refusal, stale)
            try:
                computed = work()
            except Exception:
                if stale is None:
                    raise
                self.warn("compute", "stats: the aggregate failed; answering the stale result")
                return _stale(stale)
        return self._publish(store, labels, key, lease, computed, started)

    def _refused_at_once(self, request: _Request) -> Refusal | None:
        """While this process's scans are being refused (admission.refusing), a scan is
        refused before its lease is taken: in a flood, the lease and slot round trips
        were most of what a refused request cost. As the shortcut answers in front."""
        if not self.admission.may_refuse(request.caller) or request.work.source != SCAN:
            return None
        return self.admission.refusing(request.caller)

    def _last_good(self, store: Store, key: str) -> Entry | None:
        """This process's copy of a result the shared store no longer holds (a Redis
        failover may lose the latest writes): answered stale if need be, never as fresh."""
        return self.local.read(key) if store is self.shared else None

    def _admitted(
        self, request: _Request, shared: bool, lease: Lease
    ) -> AbstractContextManager[Refusal | None]:
        """A scan slot for the computation, for no longer than its lease; reads of
        maintained counts need none."""
        if request.work.source != SCAN:
            return nullcontext()
        return self.admission.admit(request.caller, shared, lease.ends_at)

    def _refused(self, refusal: Refusal, stale: Entry | None) -> StatsResult:
        answer = self._refusal_answer(refusal, stale)
        if isinstance(answer, Refusal):
            raise ServiceUnavailable(REFUSED_MESSAGE, retry_after=answer.retry_after)
        return answer

    @staticmethod
    def _refusal_answer(refusal: Refusal, stale: Entry | None) -> StatsResult | Refusal:
        """A refused scan's answer: the stale result when there is one, else the refusal
        (a 503, counted as the cache being unavailable)."""
        if stale is not None:
            return _stale(stale)
        stats_cache_unavailable.inc()
        return refusal

    def _publish(
        self,
        store: Store,
        labels: _Labels,
        key: str,
        lease: Lease,
        computed: Computed,
        started: float,
    ) -> StatsResult:
        envelope = Envelope(
            int((time.perf_counter() - started) * 1000),
            format_timestamp(computed.cached_at),
            computed.source,
            computed.body,
        )
        fresh_ms = self._jittered_ttl_ms()
        try:
            store.publish(key, lease, envelope, fresh_ms, fresh_ms + self.settings.grace_ms)
        except StoreUnavailable:
            return StatsResult(computed.body, BYPASS, 0, computed.source)
        max_age = fresh_ms // 1000 if labels.max_age else 0
        return StatsResult(computed.body, labels.computed, max_age, computed.source)

    def _wait(self, store: Store, labels: _Labels, request: _Request) -> StatsResult:
        stats_cache_lock_waits.inc()
        deadline = time.monotonic() + self.settings.wait_ms / 1000
        delay = FIRST_POLL_SECONDS
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))  # noqa: S311
            delay = min(delay * 1.5, LONGEST_POLL_SECONDS)
            entry = store.read(request.key)
            if entry is not None:
                return self._fresh(entry, labels) if entry.fresh_ms > 0 else _stale(entry)
            with store.lease(request.key) as lease:
                if lease is not None:
                    return self._compute(store, labels, request, lease, None)
        stats_cache_unavailable.inc()
        raise ServiceUnavailable(
            "The stats are being computed; retry shortly.", retry_after=self.retry_after_seconds
        )

    @property
    def retry_after_seconds(self) -> int:
        return max(1, -(-self.settings.lease_ms // 1000))

    def _fresh(self, entry: Entry, labels: _Labels) -> StatsResult:
        max_age = entry.fresh_ms // 1000 if labels.max_age else 0
        return StatsResult(entry.envelope.body, labels.fresh, max_age, entry.envelope.source)

    def _jittered_ttl_ms(self) -> int:
        ttl = self.settings.ttl_ms
        return ttl - int(ttl * TTL_JITTER * random.random())  # noqa: S311


def _stale(entry: Entry) -> StatsResult:
    return StatsResult(entry.envelope.body, STALE, 0, entry.envelope.source)
