"""The per-process layer: last-good copies and single-flight computation.

It serves a single-process run without Redis, and keeps a worker answering,
without running the aggregate once per request, while Redis is unusable.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LocalEntry:
    body: bytes
    fresh_until: float
    usable_until: float

    def fresh_seconds(self, now: float) -> float:
        return self.fresh_until - now

    def is_usable(self, now: float) -> bool:
        return now < self.usable_until


class LocalCache:
    """A bounded LRU of results with monotonic deadlines, plus one lock per key."""

    def __init__(self, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic):
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, LocalEntry] = OrderedDict()
        self._flights: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> LocalEntry | None:
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if not entry.is_usable(now):
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: str, body: bytes, fresh_seconds: float, usable_seconds: float) -> None:
        now = self.clock()
        entry = LocalEntry(body, now + fresh_seconds, now + usable_seconds)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def flight(self, key: str) -> threading.Lock:
        with self._lock:
            lock = self._flights.get(key)
            if lock is None:
                if len(self._flights) > self.max_entries:
                    for stale_key in [k for k, v in self._flights.items() if not v.locked()]:
                        del self._flights[stale_key]
                lock = self._flights[key] = threading.Lock()
            return lock

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._flights.clear()
