"""GET /api/pipeline_runs/stats: counts by status, served from the shared cache.

This is the homepage's hot path, so a hit does as little as possible: the
validated, resolved form of a query string is memoised per process (the
parameters and the caller fully determine it), and the cached body bytes
are sent as they are stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from flask import Response, current_app, request
from flask.views import MethodView
from marshmallow import fields

from ..auth import current_identity
from ..extensions import db
from ..filters import FilterArgsSchema
from ..filters.resolve import resolve_filter
from ..smorest import Blueprint
from ..statuses import STATUS_NAMES
from ..timefmt import Timestamp
from .cache import StatsCache, StatsResult
from .canonical import cache_key, history_cache_key
from .history import BUCKETS, MAX_BUCKETS, compute_history_body, resolve_range
from .resolved import ResolvedQuery, resolved_queries
from .service import compute_stats_body

blp = Blueprint(
    "stats",
    __name__,
    url_prefix="/api/pipeline_runs",
    description="Aggregate counts by status, cached and shared by every worker.",
)


COUNTS_BY_STATUS_DOC = {
    "type": "object",
    "properties": {name: {"type": "integer", "minimum": 0} for name in STATUS_NAMES},
    "required": list(STATUS_NAMES),
    "additionalProperties": False,
}


class CountsSchema(ma.Schema):
    """What every stats answer counts: the runs matched, and their split by status."""

    total_runs = fields.Integer(required=True, metadata={"minimum": 0})
    counts_by_status = fields.Dict(
        keys=fields.String(validate=ma.validate.OneOf(STATUS_NAMES)),
        values=fields.Integer(),
        required=True,
        metadata=COUNTS_BY_STATUS_DOC,
    )


class StatsSchema(CountsSchema):
    cached_at = Timestamp(required=True)


class HistoryArgsSchema(FilterArgsSchema):
    bucket = fields.String(
        load_default="day",
        validate=ma.validate.OneOf(tuple(BUCKETS)),
        metadata={"description": "UTC hours or days of created_at."},
    )
    start_time = Timestamp(
        metadata={
            "description": "RFC 3339 with an offset; rounded down to a bucket start. "
            "Default: end_time minus 30 days (day) or 48 hours (hour)."
        }
    )
    end_time = Timestamp(
        metadata={
            "description": "RFC 3339 with an offset, exclusive; rounded up to a bucket start. "
            f"Default: the end of the current bucket. At most {MAX_BUCKETS} buckets."
        }
    )


class HistoryBucketSchema(CountsSchema):
    start_time = Timestamp(required=True)


class HistorySchema(ma.Schema):
    bucket = fields.String(required=True, validate=ma.validate.OneOf(tuple(BUCKETS)))
    start_time = Timestamp(required=True)
    end_time = Timestamp(required=True)
    buckets = fields.List(fields.Nested(HistoryBucketSchema), required=True)
    cached_at = Timestamp(required=True)


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


_filter_args = FilterArgsSchema()


def _resolve_request() -> ResolvedQuery:
    identity = current_identity()
    user = identity.user if identity else None
    memo_key = (request.query_string, user)
    resolved = resolved_queries.get(memo_key)
    if resolved is None:
        args = blp.ARGUMENTS_PARSER.parse(_filter_args, request, location="query")
        statuses = args.get("status")
        tree = resolve_filter(args.get("filter_query"), user, args.get("current_user"))
        resolved = ResolvedQuery(cache_key(tree, statuses), tree, statuses)
        resolved_queries.put(memo_key, resolved)
    return resolved


def _cache() -> StatsCache:
    cache: StatsCache = current_app.extensions["runstats_stats_cache"]
    return cache


def _cached_response(result: StatsResult) -> Response:
    return Response(
        result.body,
        status=200,
        mimetype="application/json",
        headers=result.headers(),
    )


@blp.route("/stats")
class PipelineRunStats(MethodView):
    @blp.doc(parameters=[{"in": "query", "schema": FilterArgsSchema}])
    @blp.response(200, StatsSchema, headers=CACHE_HEADERS)
    @blp.errors(400, 401, 503)
    def get(self) -> Response:
        """Run counts by status for the same filters as the list."""
        resolved = _resolve_request()
        result = _cache().get(
            resolved.key,
            lambda: compute_stats_body(db.session(), resolved.tree, resolved.statuses),
        )
        return _cached_response(result)


@blp.route("/stats/history")
class PipelineRunStatsHistory(MethodView):
    @blp.arguments(HistoryArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, HistorySchema, headers=CACHE_HEADERS)
    @blp.errors(400, 401, 503)
    def get(self, **args: Any) -> Response:
        """Run counts by status per UTC hour or day of created_at, cached like the stats."""
        identity = current_identity()
        tree = resolve_filter(
            args.get("filter_query"), identity.user if identity else None, args.get("current_user")
        )
        statuses = args.get("status")
        span = resolve_range(
            args["bucket"], args.get("start_time"), args.get("end_time"), datetime.now(UTC)
        )
        key = history_cache_key(tree, statuses, span.bucket, span.start, span.end)
        result = _cache().get(
            key, lambda: compute_history_body(db.session(), tree, statuses, span)
        )
        return _cached_response(result)
