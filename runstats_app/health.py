"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from .extensions import db

bp = Blueprint("health", __name__)

PUBLIC_ENDPOINTS = frozenset({"health.healthz", "health.readyz", "metrics.metrics"})


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when the database answers; Redis is reported but optional (stats degrade)."""
    checks: dict[str, str] = {}
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        current_app.logger.warning("readiness: database unreachable: %s", type(exc).__name__)
        checks["database"] = "unavailable"
    client = current_app.extensions["runstats_stats_cache"].client
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
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503
