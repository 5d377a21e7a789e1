"""GET /api/pipeline_runs/stats: counts by status, served from the shared cache.

This is the homepage's hot path, so a hit does as little as possible: the
validated, resolved form of a query string is memoised per process (the
parameters and the caller fully determine it), and the cached body bytes
are sent as they are stored.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import marshmallow as ma
from flask import Response, current_app, request
from flask.views import MethodView
from marshmallow import fields

from ..auth import current_identity
from ..extensions import db
from ..filters import FilterArgsSchema
from ..filters.nodes import FilterNode
from ..filters.resolve import resolve_filter
from ..smorest import Blueprint
from ..statuses import STATUS_NAMES
from ..timefmt import Timestamp
from .cache import StatsCache
from .canonical import cache_key
from .service import compute_stats_body

blp = Blueprint(
    "stats",
    __name__,
    url_prefix="/api/pipeline_runs",
    description="Aggregate counts by status, cached and shared by every worker.",
)


class StatsSchema(ma.Schema):
    total_runs = fields.Integer()
    counts_by_status = fields.Dict(
        keys=fields.String(validate=ma.validate.OneOf(STATUS_NAMES)), values=fields.Integer()
    )
    cached_at = Timestamp()


CACHE_HEADERS = {
    "X-Cache": {
        "description": "hit: a fresh shared result; miss: this request ran the query; "
        "stale: past its TTL (within the grace); bypass: computed without the shared "
        "cache because Redis is unusable.",
        "schema": {"type": "string", "enum": ["hit", "miss", "stale", "bypass"]},
    },
    "Cache-Control": {
        "description": "max-age=<seconds the result stays fresh>; 0 for stale and bypass.",
        "schema": {"type": "string"},
    },
}


@dataclass(frozen=True)
class ResolvedQuery:
    key: str
    tree: FilterNode | None
    statuses: Sequence[str] | None


class ResolvedQueries:
    """A bounded per-process memo: (query string, caller) -> resolved query."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[bytes, str | None], ResolvedQuery] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, memo_key: tuple[bytes, str | None]) -> ResolvedQuery | None:
        with self._lock:
            found = self._entries.get(memo_key)
            if found is not None:
                self._entries.move_to_end(memo_key)
            return found

    def put(self, memo_key: tuple[bytes, str | None], resolved: ResolvedQuery) -> None:
        with self._lock:
            self._entries[memo_key] = resolved
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


_resolved_queries = ResolvedQueries()
_filter_args = FilterArgsSchema()


def _resolve_request() -> ResolvedQuery:
    identity = current_identity()
    user = identity.user if identity else None
    memo_key = (request.query_string, user)
    resolved = _resolved_queries.get(memo_key)
    if resolved is None:
        args = blp.ARGUMENTS_PARSER.parse(_filter_args, request, location="query")
        statuses = args.get("status")
        tree = resolve_filter(args.get("filter_query"), user, args.get("current_user"))
        resolved = ResolvedQuery(cache_key(tree, statuses), tree, statuses)
        _resolved_queries.put(memo_key, resolved)
    return resolved


def _cache() -> StatsCache:
    cache: StatsCache = current_app.extensions["runstats_stats_cache"]
    return cache


@blp.route("/stats")
class PipelineRunStats(MethodView):
    @blp.doc(parameters=[{"in": "query", "schema": FilterArgsSchema}])
    @blp.response(200, StatsSchema, headers=CACHE_HEADERS)
    @blp.alt_response(400, description="Invalid parameters (the error envelope says which).")
    @blp.alt_response(503, description="No result within the wait budget, or database down.")
    def get(self) -> Response:
        """Run counts by status for the same filters as the list."""
        resolved = _resolve_request()
        result = _cache().get(
            resolved.key,
            lambda: compute_stats_body(db.session(), resolved.tree, resolved.statuses),
        )
        return Response(
            result.body,
            status=200,
            mimetype="application/json",
            headers={"Cache-Control": f"max-age={result.max_age}", "X-Cache": result.cache},
        )
