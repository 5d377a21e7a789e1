"""What operators poll: liveness, readiness and Prometheus metrics; public on every deployment."""

from __future__ import annotations

import os

from flask import Blueprint, Flask, Response, current_app, jsonify
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from sqlalchemy import text

from .auth import public
from .extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
@public
def readyz() -> tuple[Response, int]:
    """Ready when the database answers; Redis and replicas are reported but optional."""
    checks: dict[str, str] = {}
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        current_app.logger.warning("readiness: database unreachable: %s", type(exc).__name__)
        checks["database"] = "unavailable"
    client = current_app.extensions["runstats_redis"]
    if client is None:
        checks["redis"] = "not_configured"
    else:
        try:
            client.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            current_app.logger.warning("readiness: Redis unreachable: %s", type(exc).__name__)
            checks["redis"] = "unavailable"
    ready = checks["database"] == "ok"
    answer: dict[str, object] = {"status": "ok" if ready else "unavailable", "checks": checks}
    if db.replicas is not None:
        # Reported, never a reason to be unready: reads fall back to the primary.
        answer["replicas"] = db.replicas.report()
    return jsonify(answer), 200 if ready else 503


@bp.get("/metrics")
@public
def metrics() -> Response:
    """Every worker's samples when several share PROMETHEUS_MULTIPROC_DIR (gunicorn)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
