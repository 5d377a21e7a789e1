"""One structured log line and one latency sample per request, with a request id."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask, Response, g, request
from werkzeug.http import HTTP_STATUS_CODES

from .metrics import http_request_seconds
from .security import JSON_HEADERS

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("runstats_app.access")

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def request_id_for(incoming: str | None) -> str:
    """The caller's id when it is a sane token, else a new one (never echo arbitrary bytes)."""
    return incoming if incoming and _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def record(method: str, route: str, status: int, seconds: float, request_id: str) -> None:
    """The latency sample and the access log line of one answered request."""
    http_request_seconds.labels(route=route, method=method, status=str(status)).observe(seconds)
    log.info(
        "request method=%s route=%s status=%d duration_ms=%.1f request_id=%s",
        method,
        route,
        status,
        seconds * 1000,
        request_id,
    )


def respond_json(
    environ: WSGIEnvironment,
    start_response: StartResponse,
    status: int,
    body: bytes,
    headers: Iterable[tuple[str, str]],
    route: str,
    started: float,
) -> list[bytes]:
    """Answer a JSON body from a WSGI layer in front of Flask, carrying what the app's
    own answers carry: security headers, the request id, the log line and latency sample."""
    request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
    start_response(
        f"{status} {HTTP_STATUS_CODES[status]}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *headers,
            *JSON_HEADERS,
            (REQUEST_ID_HEADER, request_id),
        ],
    )
    method = environ.get("REQUEST_METHOD", "")
    record(method, route, status, time.perf_counter() - started, request_id)
    return [body]


def init_app(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.request_started = time.perf_counter()
        g.request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))

    @app.after_request
    def _finish(response: Response) -> Response:
        started = g.get("request_started")
        if started is None:
            return response
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        response.headers[REQUEST_ID_HEADER] = g.request_id
        record(
            request.method,
            route,
            response.status_code,
            time.perf_counter() - started,
            g.request_id,
        )
        return response
