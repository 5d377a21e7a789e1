"""The filter of a request: its parsed parameters with "me" resolved for the caller."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..auth import current_identity
from .nodes import FilterNode
from .resolve import resolve_filter
from .schema import ParsedFilter


@dataclass(frozen=True)
class RequestFilter:
    """What the list, the stats and the history filter by, for this caller."""

    tree: FilterNode | None
    statuses: Sequence[str] | None
    sent: ParsedFilter | None


def request_filter(args: Mapping[str, Any]) -> RequestFilter:
    """Resolve parsed FilterArgsSchema parameters: a token's user first, else current_user."""
    identity = current_identity()
    parsed: ParsedFilter | None = args.get("filter_query")
    tree = resolve_filter(parsed, identity.user if identity else None, args.get("current_user"))
    return RequestFilter(tree, args.get("status"), parsed)
