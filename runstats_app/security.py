"""Security headers on every response.

Defaults only (`setdefault`): a blueprint that serves its own page may send
its own policy. HTML gets a strict Content-Security-Policy (no inline script
or style: the Swagger UI page loads its initialiser from a file); everything
else, JSON above all, may load nothing and be framed by nobody.
"""

from __future__ import annotations

from flask import Flask, Response

HTML_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
OTHER_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


JSON_HEADERS = (
    *HEADERS.items(),
    ("Content-Security-Policy", OTHER_CONTENT_SECURITY_POLICY),
)


def init_app(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault(
            "Content-Security-Policy",
            HTML_CONTENT_SECURITY_POLICY
            if response.mimetype == "text/html"
            else OTHER_CONTENT_SECURITY_POLICY,
        )
        return response
