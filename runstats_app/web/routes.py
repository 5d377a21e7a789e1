"""The page and its static assets; the page's security headers are set here."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template

from ..config import Settings
from ..statuses import STATUS_NAMES

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)


@bp.get("/")
def index() -> str:
    """The homepage; public, whatever the deployment's read policy (the API decides)."""
    settings: Settings = current_app.config["RUNSTATS"]
    return render_template(
        "index.html",
        statuses=STATUS_NAMES,
        stats_ttl=settings.stats_cache_ttl,
        reads_need_token=settings.require_auth_for_reads,
    )


@bp.after_request
def _page_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-cache")
    return response
