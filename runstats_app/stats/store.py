"""What the stats cache needs of a place to keep results: the Store protocol.

Two places implement it: Redis, shared by every worker and host
(redis_store.py), and this process's memory (local_store.py), which serves a
single-process run and keeps a worker answering while Redis is unusable.
The one state machine that uses them is cache.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from .envelope import Envelope


class StoreUnavailable(Exception):
    """The store cannot be used now (Redis down, hung, or its breaker open)."""


@dataclass(frozen=True)
class Entry:
    """A stored result and how long it has left: fresh while `fresh_ms` > 0, then stale."""

    envelope: Envelope
    fresh_ms: int
    usable_ms: int


@dataclass(frozen=True)
class Lease:
    """The right to compute one key; `generation` orders this computation after earlier ones,
    `token` is what the holder's lease holds (a shared store writes only for its holder)."""

    generation: int
    token: str = ""
    ends_at: float = math.inf
    """time.monotonic() by which the lease has ended (at the latest)."""


class Store(Protocol):
    def read(self, key: str) -> Entry | None: ...

    def lease(self, key: str) -> AbstractContextManager[Lease | None]:
        """Try to take the key's lease without waiting; released when the block ends."""
        ...

    def publish(
        self, key: str, lease: Lease, envelope: Envelope, fresh_ms: int, life_ms: int
    ) -> None: ...


LeaseScope = Iterator[Lease | None]
