"""Swagger UI's assets, served by the app itself so /api/docs works offline.

The page itself is flask-smorest's, rendered from our templates/swagger_ui.html,
which loads its initialiser (docs_assets/swagger-init.js, served here) instead
of running an inline script, so that the page's CSP can forbid inline script.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from .auth import public

ASSETS_URL = "/api/docs/assets/"

bp = Blueprint(
    "docs_assets", __name__, static_folder="docs_assets", static_url_path="/api/docs/static"
)


@bp.get(f"{ASSETS_URL}<path:filename>")
@public
def swagger_asset(filename: str) -> Response:
    return send_from_directory(swagger_ui_path, filename, max_age=86400)


PUBLIC_ENDPOINTS = ("api-docs.openapi_swagger_ui", "docs_assets.static")


def init_app(app: Flask) -> None:
    """The assets, public like Swagger UI's page (flask-smorest serves the page itself)."""
    app.register_blueprint(bp)
    for endpoint in PUBLIC_ENDPOINTS:
        app.view_functions[endpoint] = public(app.view_functions[endpoint])
