"""The canonical form of a resolved stats query, and the cache key derived from it.

Equivalent filters must share one cache entry: nested and/or are flattened,
operands de-duplicated and sorted, `value_in` lists sorted and de-duplicated
(a one-value `value_in` is a `value_equals`), double negation removed,
timestamps rendered in UTC. "me" is already resolved, so two users never share
an entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..filters import nodes
from ..filters.nodes import FilterNode
from ..timefmt import format_timestamp

KEY_PREFIX = "runstats:stats"
# Bump whenever the query or the cached payload changes shape: a rolling
# deploy then never reads the other version's entries.
PAYLOAD_VERSION = 2
HISTORY_KEY_PREFIX = "runstats:stats-history"
HISTORY_PAYLOAD_VERSION = 2

Canonical = Any


def _dump(value: Canonical) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_node(node: FilterNode) -> Canonical:
    match node:
        case nodes.And(items) | nodes.Or(items):
            kind = "and" if isinstance(node, nodes.And) else "or"
            operands: dict[str, Canonical] = {}
            for item in items:
                form = canonical_node(item)
                nested = form.get(kind) if isinstance(form, dict) and len(form) == 1 else None
                for operand in nested if nested is not None else [form]:
                    operands.setdefault(_dump(operand), operand)
            if len(operands) == 1:
                return next(iter(operands.values()))
            return {kind: [operands[k] for k in sorted(operands)]}
        case nodes.Not(item):
            inner = canonical_node(item)
            if isinstance(inner, dict) and set(inner) == {"not"}:
                return inner["not"]
            return {"not": inner}
        case nodes.KeyExists(key):
            return {"key_exists": {"key": key}}
        case nodes.ValueEquals(key, value):
            return {"value_equals": {"key": key, "value": value}}
        case nodes.ValueContains(key, substring):
            return {"value_contains": {"key": key, "value_substring": substring}}
        case nodes.ValueIn(key, values):
            unique = sorted(set(values))
            if len(unique) == 1:
                return {"value_equals": {"key": key, "value": unique[0]}}
            return {"value_in": {"key": key, "values": unique}}
        case nodes.TimeRange(key, start, end):
            body: dict[str, str] = {"key": key}
            if start is not None:
                body["start_time"] = format_timestamp(start)
            if end is not None:
                body["end_time"] = format_timestamp(end)
            return {"time_range": body}
    raise TypeError(f"not a filter node: {node!r}")


def _canonical_document(
    tree: FilterNode | None, statuses: Sequence[str] | None
) -> dict[str, Canonical]:
    return {
        "filter": None if tree is None else canonical_node(tree),
        "status": sorted(set(statuses or ())),
    }


def canonical_query(tree: FilterNode | None, statuses: Sequence[str] | None) -> str:
    return _dump(_canonical_document(tree, statuses))


def cache_key(tree: FilterNode | None, statuses: Sequence[str] | None) -> str:
    """`runstats:stats:v<N>:{<sha256>}`; the braces keep a key's siblings in one slot."""
    digest = hashlib.sha256(canonical_query(tree, statuses).encode("utf-8")).hexdigest()
    return f"{KEY_PREFIX}:v{PAYLOAD_VERSION}:{{{digest}}}"


def history_cache_key(
    tree: FilterNode | None,
    statuses: Sequence[str] | None,
    bucket: str,
    start: datetime,
    end: datetime,
) -> str:
    """`runstats:stats-history:v<N>:{<sha256>}` over the canonical query, bucket and range."""
    document = {
        **_canonical_document(tree, statuses),
        "bucket": bucket,
        "range": [format_timestamp(start), format_timestamp(end)],
    }
    digest = hashlib.sha256(_dump(document).encode("utf-8")).hexdigest()
    return f"{HISTORY_KEY_PREFIX}:v{HISTORY_PAYLOAD_VERSION}:{{{digest}}}"
