"""One structured log line and one latency sample per request, with a request id."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from .metrics import http_request_seconds

log = logging.getLogger("runstats_app.access")

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def _request_id() -> str:
    """The caller's id when it is a sane token, else a new one (never echo arbitrary bytes)."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    return incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def init_app(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.request_started = time.perf_counter()
        g.request_id = _request_id()

    @app.after_request
    def _finish(response: Response) -> Response:
        started = g.get("request_started")
        if started is None:
            return response
        seconds = time.perf_counter() - started
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        http_request_seconds.labels(
            route=route, method=request.method, status=str(response.status_code)
        ).observe(seconds)
        response.headers[REQUEST_ID_HEADER] = g.request_id
        log.info(
            "request method=%s route=%s status=%d duration_ms=%.1f request_id=%s",
            request.method,
            route,
            response.status_code,
            seconds * 1000,
            g.request_id,
        )
        return response
