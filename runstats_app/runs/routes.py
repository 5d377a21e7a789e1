"""HTTP routes of the runs resource: validate, call one service function, respond.

The response decorators document each answer with its schema; the answers
themselves are written by serialise.py (a view returning a Response is passed
through as it is).
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from ..auth import Identity, Role
from ..extensions import db
from ..filters.request import request_filter
from ..openapi import ANNOTATION_KEY, RUN_ID
from ..pagination import PageTokens, filter_binding
from ..smorest import Blueprint
from ..statuses import RunStatus
from . import service, status_changes
from .schemas import (
    AnnotationValueSchema,
    ListArgsSchema,
    RunCreateSchema,
    RunListSchema,
    RunSchema,
    StatusChangeSchema,
    TransitionSchema,
)
from .serialise import page_response, record_response, run_response

blp = Blueprint(
    "pipeline_runs",
    __name__,
    url_prefix="/api/pipeline_runs",
    description="Pipeline runs: create, read, list with filters, change status.",
)


def _page_tokens() -> PageTokens:
    tokens: PageTokens = current_app.extensions["runstats_page_tokens"]
    return tokens


@blp.route("/")
class PipelineRuns(MethodView):
    @blp.arguments(ListArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, RunListSchema)
    @blp.errors(400, 401, 503)
    def get(self, **args: Any) -> Response:
        """List runs, newest first, with filters and keyset pagination."""
        found = request_filter(args)
        binding = filter_binding(found.sent.raw if found.sent else None, found.statuses)
        tokens = _page_tokens()
        after = tokens.decode(args["page_token"], binding) if "page_token" in args else None
        page = db.read(
            lambda session: service.list_runs(
                session, found.tree, found.statuses, args["page_size"], after
            )
        ).value
        return page_response(
            page, tokens.encode(page.next_cursor, binding) if page.next_cursor else None
        )

    @blp.arguments(RunCreateSchema)
    @blp.response(201, RunSchema)
    @blp.errors(400, 413, 503)
    @blp.requires(Role.writer)
    def post(self, data: dict[str, Any], identity: Identity) -> Response:
        """Create a run (writer role)."""
        return run_response(service.create_run(db.session(), identity, data), 201)


@blp.route("/<string:run_id>", parameters=[RUN_ID])
class PipelineRunById(MethodView):
    @blp.response(200, RunSchema)
    @blp.errors(401, 404, 503)
    def get(self, run_id: str) -> Response:
        """One run."""
        return record_response(
            db.read_primary(lambda connection: service.read_run(connection, run_id))
        )


@blp.route("/<string:run_id>/transitions", parameters=[RUN_ID])
class PipelineRunTransitions(MethodView):
    @blp.arguments(TransitionSchema)
    @blp.response(200, RunSchema)
    @blp.errors(400, 404, 409, 413, 503)
    @blp.requires(Role.writer)
    def post(self, data: dict[str, Any], run_id: str, identity: Identity) -> Response:
        """Change a run's status; `expected_status` makes it a compare-and-set."""
        expected = data.get("expected_status")
        return run_response(
            status_changes.transition_run(
                db.session(),
                identity,
                run_id,
                RunStatus(data["status"]),
                RunStatus(expected) if expected else None,
            )
        )


@blp.route("/<string:run_id>/cancel", parameters=[RUN_ID])
class PipelineRunCancel(MethodView):
    @blp.response(200, RunSchema)
    @blp.errors(404, 409, 503)
    @blp.requires(Role.writer)
    def post(self, run_id: str, identity: Identity) -> Response:
        """Cancel a run: RUNNING goes to CANCELLING, QUEUED/PENDING to CANCELLED."""
        return run_response(status_changes.cancel_run(db.session(), identity, run_id))


@blp.route("/<string:run_id>/annotations/<path:key>", parameters=[RUN_ID, ANNOTATION_KEY])
class PipelineRunAnnotation(MethodView):
    @blp.arguments(AnnotationValueSchema)
    @blp.response(200, RunSchema)
    @blp.errors(400, 404, 413, 503)
    @blp.requires(Role.writer)
    def put(self, data: dict[str, Any], run_id: str, key: str, identity: Identity) -> Response:
        """Set one annotation."""
        return run_response(
            service.set_annotation(db.session(), identity, run_id, key, data["value"])
        )

    @blp.response(204)
    @blp.errors(400, 404, 503)
    @blp.requires(Role.writer)
    def delete(self, run_id: str, key: str, identity: Identity) -> None:
        """Remove one annotation."""
        service.delete_annotation(db.session(), identity, run_id, key)


@blp.route("/<string:run_id>/history", parameters=[RUN_ID])
class PipelineRunHistory(MethodView):
    @blp.response(200, StatusChangeSchema(many=True))
    @blp.errors(401, 404, 503)
    def get(self, run_id: str) -> Any:
        """The run's status changes, oldest first."""
        return service.history(db.session(), run_id)
