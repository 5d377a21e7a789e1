"""GET /api/pipeline_runs/stats: counts by status, served from the shared cache."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, current_app
from flask.views import MethodView
from marshmallow import fields

from ..auth import current_identity
from ..extensions import db
from ..filters import FilterArgsSchema
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


def _cache() -> StatsCache:
    cache: StatsCache = current_app.extensions["runstats_stats_cache"]
    return cache


@blp.route("/stats")
class PipelineRunStats(MethodView):
    @blp.arguments(FilterArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, StatsSchema, headers=CACHE_HEADERS)
    @blp.alt_response(503, description="No result within the wait budget, or database down.")
    def get(self, **args: Any) -> Response:
        """Run counts by status for the same filters as the list."""
        identity = current_identity()
        statuses = args.get("status")
        tree = resolve_filter(
            args.get("filter_query"), identity.user if identity else None, args.get("current_user")
        )
        result = _cache().get(
            cache_key(tree, statuses),
            lambda: compute_stats_body(db.session(), tree, statuses),
        )
        return Response(
            result.body,
            status=200,
            mimetype="application/json",
            headers={"Cache-Control": f"max-age={result.max_age}", "X-Cache": result.cache},
        )
