"""Results kept in this process: a bounded LRU with monotonic deadlines, a lock per key.

It is the store of a single-process run without Redis, and the last-good
copy a worker answers from (without running the aggregate once per request)
while Redis is unusable.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from .envelope import Envelope
from .store import Entry, Lease, LeaseScope

LOCAL_GENERATION = 0


@dataclass(frozen=True)
class _Kept:
    envelope: Envelope
    fresh_until: float
    usable_until: float


class LocalStore:
    def __init__(
        self, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, _Kept] = OrderedDict()
        self._leases: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def read(self, key: str) -> Entry | None:
        now = self.clock()
        with self._lock:
            kept = self._entries.get(key)
            if kept is None:
                return None
            if now >= kept.usable_until:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
        return Entry(
            kept.envelope,
            int((kept.fresh_until - now) * 1000),
            int((kept.usable_until - now) * 1000),
        )

    def keep(self, key: str, envelope: Envelope, fresh_ms: int, life_ms: int) -> None:
        now = self.clock()
        kept = _Kept(envelope, now + fresh_ms / 1000, now + life_ms / 1000)
        with self._lock:
            self._entries[key] = kept
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    @contextmanager
    def lease(self, key: str) -> LeaseScope:
        lock = self._lease_lock(key)
        if not lock.acquire(blocking=False):
            yield None
            return
        try:
            yield Lease(LOCAL_GENERATION)
        finally:
            lock.release()

    def publish(
        self, key: str, lease: Lease, envelope: Envelope, fresh_ms: int, life_ms: int
    ) -> None:
        self.keep(key, envelope, fresh_ms, life_ms)

    def _lease_lock(self, key: str) -> threading.Lock:
        with self._lock:
            lock = self._leases.get(key)
            if lock is None:
                if len(self._leases) > self.max_entries:
                    idle = [k for k, held in self._leases.items() if not held.locked()]
                    for idle_key in idle:
                        del self._leases[idle_key]
                lock = self._leases[key] = threading.Lock()
            return lock

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._leases.clear()
