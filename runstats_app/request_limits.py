"""Bounds on the request head, answered in the error envelope before anything else runs.

A `filter_query` of 8 KiB of JSON can take about 24 KiB once URL-encoded, so
the contract accepts request lines up to 32 KiB and answers a longer one with
a 414 in the error envelope. gunicorn cannot say that itself: its
`limit_request_line` takes 0 to 8190 (a larger value is silently lowered to
8190), and what it refuses it answers with its own HTML page. So
gunicorn.conf.py sets it to 0 and this WSGI layer, the outermost one (ahead of
the stats hit shortcut), holds the bound. Header lines get the same 32 KiB
(the reverse proxy's one buffer size) and a 431; gunicorn keeps a backstop
twice that, since its `limit_request_field_size` cannot be lifted, and its
`limit_request_fields` (100 headers) as it is.

Read in gunicorn 27.0.1 (http/message.py, Request.__init__ and read_line):

- `limit_request_line = 0` is honoured as "no limit" by the Python parser,
  the one used unless the optional `gunicorn_h1c` (>= 0.4.1) is installed;
  with it, 0 means 1 MiB. The Python parser then reads the request line until
  its CRLF with no bound of its own, copying the buffer on every read. Measured
  with a client streaming a line that never ends: a sync worker was held for
  the worker timeout (30 s), 13 MiB read, then killed and replaced; a gthread
  worker's thread was held for as long as the client kept sending (75 s and
  23 MiB when the client stopped), the worker never replaced. A reverse proxy
  in front bounds the line (README, Limits and failure behaviour).
- `limit_request_field_size = 0` does not mean unlimited, whatever its
  documentation says: the parser replaces 0 with 8190. A positive value is
  taken as it is, and counts the line's CRLF.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from .errors import envelope
from .requestlog import respond_json

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MAX_REQUEST_LINE = 32 * 1024
"""Bytes of `METHOD SP request-target SP HTTP-version`, without the CRLF."""
MAX_HEADER_LINE = 32 * 1024
"""Bytes of `Name: value` for one header field (repeated fields joined, as WSGI passes them)."""
GUNICORN_FIELD_SIZE_BACKSTOP = 2 * MAX_HEADER_LINE
"""gunicorn's own `limit_request_field_size` (its HTML 431 beyond it)."""

_HEADER_KEYS_WITHOUT_PREFIX = ("CONTENT_TYPE", "CONTENT_LENGTH")


def request_line_length(environ: WSGIEnvironment) -> int:
    """The request line's length as sent: gunicorn and werkzeug keep the raw target."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if target is None:
        path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/")
        query = environ.get("QUERY_STRING", "")
        target = f"{path}?{query}" if query else path
    method = environ.get("REQUEST_METHOD", "")
    return len(method) + 1 + len(target) + 1 + len(environ.get("SERVER_PROTOCOL", ""))


def header_name(key: str) -> str:
    """`HTTP_X_REQUEST_ID` -> `X-Request-Id` (WSGI keeps no original spelling)."""
    name = key[5:] if key.startswith("HTTP_") else key
    return "-".join(part.capitalize() for part in name.split("_"))


def oversized_header(environ: WSGIEnvironment) -> tuple[str, int] | None:
    """The first header field longer than MAX_HEADER_LINE, with its length."""
    for key, value in environ.items():
        # Every request pays for this loop: one cheap test that any over-long header passes.
        if type(value) is not str or len(key) + len(value) <= MAX_HEADER_LINE - 2:
            continue
        if key.startswith("HTTP_"):
            length = len(key) - 5 + 2 + len(value)
        elif key in _HEADER_KEYS_WITHOUT_PREFIX:
            length = len(key) + 2 + len(value)
        else:
            continue
        if length > MAX_HEADER_LINE:
            return header_name(key), length
    return None


class RequestLimits:
    """Refuses an over-long request line (414) or header field (431) in the envelope."""

    def __init__(self, app: WSGIApplication, url_map: Map) -> None:
        self.app = app
        self.url_map = url_map

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        line = request_line_length(environ)
        if line > MAX_REQUEST_LINE:
            return self._refuse(
                environ,
                start_response,
                started,
                414,
                f"The request line is {line} bytes, over the limit of {MAX_REQUEST_LINE} "
                "bytes (request line limit).",
            )
        header = oversized_header(environ)
        if header is not None:
            name, length = header
            return self._refuse(
                environ,
                start_response,
                started,
                431,
                f"The {name} header is {length} bytes, over the limit of {MAX_HEADER_LINE} "
                "bytes per header line (header line limit).",
                {"headers": {name: [f"Longer than {MAX_HEADER_LINE} bytes."]}},
            )
        return self.app(environ, start_response)

    def _refuse(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        started: float,
        status: int,
        message: str,
        errors: dict[str, Any] | None = None,
    ) -> list[bytes]:
        body = json.dumps(envelope(status, message, errors), separators=(",", ":")).encode()
        route = self._route(environ)
        return respond_json(environ, start_response, status, body, (), route, started)

    def _route(self, environ: WSGIEnvironment) -> str:
        """The URL rule the request was meant for, as the access log and metrics name it."""
        try:
            rule, _ = self.url_map.bind_to_environ(environ).match(return_rule=True)
        except HTTPException:
            return "unmatched"
        return str(rule.rule)


def init_app(app: Any) -> None:
    """Put the limits in front of everything in `app.wsgi_app`; call it last in create_app,
    after every other WSGI layer (the stats hit shortcut above all) is in place."""
    app.wsgi_app = RequestLimits(app.wsgi_app, app.url_map)
