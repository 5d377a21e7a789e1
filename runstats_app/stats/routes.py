"""GET /api/pipeline_runs/stats and /stats/history: counts by status, served from the cache.

A fresh anonymous stats hit never reaches these views: the WSGI layer in
shortcut.py answers it in front of Flask (installed with this blueprint by
`stats.init_app`). Everything else comes here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response
from flask.views import MethodView

from ..filters import FilterArgsSchema
from ..filters.request import request_filter
from ..smorest import Blueprint
from . import service
from .history import resolve_range
from .resolved import resolve_stats_request
from .result import StatsResult
from .schemas import CACHE_HEADERS, HistoryArgsSchema, HistorySchema, StatsSchema

blp = Blueprint(
    "stats",
    __name__,
    url_prefix="/api/pipeline_runs",
    description="Aggregate counts by status, cached and shared by every worker.",
)


def _response(result: StatsResult) -> Response:
    return Response(result.body, status=200, mimetype="application/json", headers=result.headers())


@blp.route("/stats")
class PipelineRunStats(MethodView):
    @blp.doc(parameters=[{"in": "query", "schema": FilterArgsSchema}])
    @blp.response(200, StatsSchema, headers=CACHE_HEADERS)
    @blp.errors(400, 401, 503)
    def get(self) -> Response:
        """Run counts by status for the same filters as the list."""
        query = resolve_stats_request()
        return _response(service.stats(query.key, query.tree, query.statuses))


@blp.route("/stats/history")
class PipelineRunStatsHistory(MethodView):
    @blp.arguments(HistoryArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, HistorySchema, headers=CACHE_HEADERS)
    @blp.errors(400, 401, 503)
    def get(self, **args: Any) -> Response:
        """Run counts by status per UTC hour or day of created_at, cached like the stats."""
        found = request_filter(args)
        span = resolve_range(
            args["bucket"], args.get("start_time"), args.get("end_time"), datetime.now(UTC)
        )
        return _response(service.history(found.tree, found.statuses, span))
