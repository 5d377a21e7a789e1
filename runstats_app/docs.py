"""Swagger UI's assets, served by the app itself so /api/docs works offline."""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

ASSETS_URL = "/api/docs/assets/"

bp = Blueprint("docs_assets", __name__)


@bp.get(f"{ASSETS_URL}<path:filename>")
def swagger_asset(filename: str) -> Response:
    return send_from_directory(swagger_ui_path, filename, max_age=86400)
