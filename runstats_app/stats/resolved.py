"""The per-process memo of resolved stats queries.

A stats query is fully determined by its query string and the caller: once
validated and resolved ("me" included) it need not be parsed again. The memo
is what lets a cache hit skip validation, in the route and in the shortcut in
front of the app (shortcut.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from flask import request

from ..auth import current_identity
from ..filters import FilterArgsSchema
from ..filters.nodes import FilterNode
from ..filters.request import request_filter
from ..smorest import StrictParser
from .canonical import cache_key
from .counts.planner import only_a_scan_answers

MemoKey = tuple[bytes, str | None]


@dataclass(frozen=True)
class ResolvedQuery:
    key: str
    tree: FilterNode | None
    statuses: Sequence[str] | None
    scans: bool  # whatever the counts' state, only a scan can answer it (counts/planner.py)


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
_parser = StrictParser()
_filter_args = FilterArgsSchema()


def resolve_stats_request() -> ResolvedQuery:
    """This request's stats query: from the memo, or parsed, resolved and remembered."""
    identity = current_identity()
    memo_key = (request.query_string, identity.user if identity else None)
    resolved = resolved_queries.get(memo_key)
    if resolved is None:
        found = request_filter(_parser.parse(_filter_args, request, location="query"))
        resolved = ResolvedQuery(
            cache_key(found.tree, found.statuses),
            found.tree,
            found.statuses,
            scans=only_a_scan_answers(found.tree, found.statuses),
        )
        resolved_queries.put(memo_key, resolved)
    return resolved
