"""The per-process memo of resolved stats queries.

A stats query is fully determined by its query string and the caller: once
validated and resolved ("me" included) it need not be parsed again. The memo
is what lets a cache hit skip validation, in the route and in the shortcut
in front of the app (shortcut.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from ..filters.nodes import FilterNode

MemoKey = tuple[bytes, str | None]


@dataclass(frozen=True)
class ResolvedQuery:
    key: str
    tree: FilterNode | None
    statuses: Sequence[str] | None


class ResolvedQueries:
    """A bounded LRU: (raw query string, authenticated user) -> resolved query."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[MemoKey, ResolvedQuery] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, memo_key: MemoKey) -> ResolvedQuery | None:
        with self._lock:
            found = self._entries.get(memo_key)
            if found is not None:
                self._entries.move_to_end(memo_key)
            return found

    def put(self, memo_key: MemoKey, resolved: ResolvedQuery) -> None:
        with self._lock:
            self._entries[memo_key] = resolved
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


resolved_queries = ResolvedQueries()
