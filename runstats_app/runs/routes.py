"""HTTP routes of the runs resource: validate, call one service function, respond."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from ..auth import Role, current_identity, require_role
from ..extensions import db
from ..filters.resolve import resolve_filter
from ..openapi import ANNOTATION_KEY, RUN_ID
from ..pagination import PageTokens, filter_binding
from ..smorest import Blueprint
from ..statuses import RunStatus
from . import service
from .schemas import (
    AnnotationValueSchema,
    ListArgsSchema,
    RunCreateSchema,
    RunListSchema,
    RunSchema,
    StatusChangeSchema,
    TransitionSchema,
)

blp = Blueprint(
    "pipeline_runs",
    __name__,
    url_prefix="/api/pipeline_runs",
    description="Pipeline runs: create, read, list with filters, change status.",
)

WRITER_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def _page_tokens() -> PageTokens:
    tokens: PageTokens = current_app.extensions["runstats_page_tokens"]
    return tokens


@blp.route("/")
class PipelineRuns(MethodView):
    @blp.arguments(ListArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, RunListSchema)
    @blp.errors(400, 401, 503)
    def get(self, **args: Any) -> dict[str, Any]:
        """List runs, newest first, with filters and keyset pagination."""
        parsed = args.get("filter_query")
        statuses = args.get("status")
        identity = current_identity()
        tree = resolve_filter(
            parsed, identity.user if identity else None, args.get("current_user")
        )
        binding = filter_binding(parsed.raw if parsed else None, statuses)
        tokens = _page_tokens()
        after = tokens.decode(args["page_token"], binding) if "page_token" in args else None
        page = service.list_runs(db.session(), tree, statuses, args["page_size"], after)
        return {
            "pipeline_runs": page.runs,
            "next_page_token": (
                tokens.encode(page.next_cursor, binding) if page.next_cursor else None
            ),
        }

    @blp.arguments(RunCreateSchema)
    @blp.response(201, RunSchema)
    @blp.errors(400, 401, 403, 413, 503)
    @blp.doc(security=WRITER_SECURITY)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a run (writer role)."""
        identity = require_role(Role.writer)
        return service.create_run(db.session(), identity, data)


@blp.route("/<string:run_id>", parameters=[RUN_ID])
class PipelineRunById(MethodView):
    @blp.response(200, RunSchema)
    @blp.errors(401, 404, 503)
    def get(self, run_id: str) -> Any:
        """One run."""
        return service.get_run(db.session(), run_id)


@blp.route("/<string:run_id>/transitions", parameters=[RUN_ID])
class PipelineRunTransitions(MethodView):
    @blp.arguments(TransitionSchema)
    @blp.response(200, RunSchema)
    @blp.errors(400, 401, 403, 404, 409, 413, 503)
    @blp.doc(security=WRITER_SECURITY)
    def post(self, data: dict[str, Any], run_id: str) -> Any:
        """Change a run's status; `expected_status` makes it a compare-and-set."""
        identity = require_role(Role.writer)
        expected = data.get("expected_status")
        return service.transition_run(
            db.session(),
            identity,
            run_id,
            RunStatus(data["status"]),
            RunStatus(expected) if expected else None,
        )


@blp.route("/<string:run_id>/cancel", parameters=[RUN_ID])
class PipelineRunCancel(MethodView):
    @blp.response(200, RunSchema)
    @blp.errors(401, 403, 404, 409, 503)
    @blp.doc(security=WRITER_SECURITY)
    def post(self, run_id: str) -> Any:
        """Cancel a run: RUNNING goes to CANCELLING, QUEUED/PENDING to CANCELLED."""
        identity = require_role(Role.writer)
        return service.cancel_run(db.session(), identity, run_id)


@blp.route("/<string:run_id>/annotations/<path:key>", parameters=[RUN_ID, ANNOTATION_KEY])
class PipelineRunAnnotation(MethodView):
    @blp.arguments(AnnotationValueSchema)
    @blp.response(200, RunSchema)
    @blp.errors(400, 401, 403, 404, 413, 503)
    @blp.doc(security=WRITER_SECURITY)
    def put(self, data: dict[str, Any], run_id: str, key: str) -> Any:
        """Set one annotation."""
        identity = require_role(Role.writer)
        return service.set_annotation(db.session(), identity, run_id, key, data["value"])

    @blp.response(204)
    @blp.errors(400, 401, 403, 404, 503)
    @blp.doc(security=WRITER_SECURITY)
    def delete(self, run_id: str, key: str) -> None:
        """Remove one annotation."""
        identity = require_role(Role.writer)
        service.delete_annotation(db.session(), identity, run_id, key)


@blp.route("/<string:run_id>/history", parameters=[RUN_ID])
class PipelineRunHistory(MethodView):
    @blp.response(200, StatusChangeSchema(many=True))
    @blp.errors(401, 404, 503)
    def get(self, run_id: str) -> Any:
        """The run's status changes, oldest first."""
        return service.history(db.session(), run_id)
