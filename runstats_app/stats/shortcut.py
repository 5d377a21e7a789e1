"""Fresh stats hits answered in front of the Flask app.

The homepage asks the same anonymous question on every page load. Once its
query string has been validated and resolved (the memo in resolved.py) and
the shared cache holds a fresh result, the answer is one Redis read and the
stored bytes; Flask's request context, routing, the smorest wrappers and the
before/after hooks would cost more than that. So this WSGI layer answers
exactly those requests, with the headers, access log line and metrics the
app would have produced, and hands everything else to the app: a token, a
query string not seen yet, a stale or missing result, Redis trouble,
deployments that require authentication for reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..requestlog import respond_json
from .cache import StatsCache
from .resolved import resolved_queries

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

STATS_ROUTE = "/api/pipeline_runs/stats"


class StatsHitShortcut:
    def __init__(self, app: WSGIApplication, cache: Callable[[], StatsCache]) -> None:
        self.app = app
        self.cache = cache

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != STATS_ROUTE
            or environ.get("REQUEST_METHOD") != "GET"
            or "HTTP_AUTHORIZATION" in environ
        ):
            return self.app(environ, start_response)
        started = time.perf_counter()
        query_string = environ.get("QUERY_STRING", "").encode("latin-1")
        resolved = resolved_queries.get((query_string, None))
        result = self.cache().fresh_hit(resolved.key) if resolved is not None else None
        if result is None:
            return self.app(environ, start_response)
        return respond_json(
            environ, start_response, 200, result.body, result.headers(), STATS_ROUTE, started
        )


def install(app: Any) -> None:
    """Put the shortcut in front of `app.wsgi_app`, unless every read needs a token."""
    if app.config["RUNSTATS"].require_auth_for_reads:
        return
    app.wsgi_app = StatsHitShortcut(app.wsgi_app, lambda: app.extensions["runstats_stats_cache"])
