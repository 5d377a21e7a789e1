"""Stats answers given in front of the Flask app: fresh hits, and refusals in a flood.

The homepage asks the same anonymous question on every page load. Once its
query string has been validated and resolved (the memo in resolved.py) and
the shared cache holds a fresh result, the answer is one Redis read and the
stored bytes; Flask's request context, routing, the smorest wrappers and the
before/after hooks would cost more than that.

A flood of distinct filters is the other case: while this process's scans are
being refused (refusals.py) a known query string that only a scan can answer
gets its stale result or a 503 with Retry-After here, as the app would answer
it, instead of costing a worker the whole request. A token is still checked
(one primary read, as the app does) before anything is answered for it.

Answers carry the headers, access log line and metrics the app would have
produced. Everything else goes to the app: a query string not seen yet, a
stale or missing result outside a flood, Redis trouble, a token while nothing
is refused, deployments that require authentication for reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from ..auth import lookup_identity, parse_bearer
from ..config import Settings
from ..errors import envelope
from ..extensions import db
from ..requestlog import respond_json
from .admission import ANONYMOUS, Refusal, user_caller
from .cache import REFUSED_MESSAGE, StatsCache
from .resolved import resolved_queries

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

STATS_ROUTE = "/api/pipeline_runs/stats"


class _Unknown:
    """The caller cannot be told here: the app must answer."""


UNKNOWN = _Unknown()
Asker = tuple[str | None, str | None]  # (the user for the memo, the caller for admission)


class StatsShortcut:
    def __init__(
        self, app: WSGIApplication, flask_app: Flask, cache: Callable[[], StatsCache]
    ) -> None:
        self.app = app
        self.flask_app = flask_app
        self.cache = cache
        settings: Settings = flask_app.config["RUNSTATS"]
        self.anonymous_caller = None if settings.trusted_proxies else ANONYMOUS
        refused = flask_app.json.dumps(envelope(503, REFUSED_MESSAGE), separators=(",", ":"))
        self.refused_body = f"{refused}\n".encode()  # as the app's error handler writes it

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != STATS_ROUTE or environ.get("REQUEST_METHOD") != "GET":
            return self.app(environ, start_response)
        started = time.perf_counter()
        cache = self.cache()
        asker = self._asker(environ, cache)
        if isinstance(asker, _Unknown):
            return self.app(environ, start_response)
        user, caller = asker
        query_string = environ.get("QUERY_STRING", "").encode("latin-1")
        resolved = resolved_queries.get((query_string, user))
        if resolved is None:
            return self.app(environ, start_response)
        answer = cache.early_answer(resolved.key, resolved.scans, caller)
        if answer is None:
            return self.app(environ, start_response)
        if isinstance(answer, Refusal):
            body = self.refused_body
            headers = [("Retry-After", str(answer.retry_after))]
            return respond_json(environ, start_response, 503, body, headers, STATS_ROUTE, started)
        return respond_json(
            environ, start_response, 200, answer.body, answer.headers(), STATS_ROUTE, started
        )

    def _asker(self, environ: WSGIEnvironment, cache: StatsCache) -> Asker | _Unknown:
        """Who asks. A token is looked up only while some scan is being refused: other
        token requests are the app's (it answers their 401s too)."""
        header = environ.get("HTTP_AUTHORIZATION")
        if header is None:
            return None, self.anonymous_caller
        if not cache.admission.windows.any_open(time.monotonic()):
            return UNKNOWN
        token = parse_bearer(header)
        if token is None:
            return UNKNOWN
        try:
            with self.flask_app.app_context():
                identity = db.read_primary(lambda connection: lookup_identity(connection, token))
        except SQLAlchemyError:
            return UNKNOWN
        if identity is None:
            return UNKNOWN
        return identity.user, user_caller(identity.user)


def install(app: Any) -> None:
    """Put the shortcut in front of `app.wsgi_app`, unless every read needs a token."""
    if app.config["RUNSTATS"].require_auth_for_reads:
        return
    app.wsgi_app = StatsShortcut(app.wsgi_app, app, lambda: app.extensions["runstats_stats_cache"])
