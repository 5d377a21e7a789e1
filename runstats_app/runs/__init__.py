"""Pipeline runs: create, read, list with filters, change status, annotate."""

from __future__ import annotations

from flask import Flask

from ..extensions import api
from ..pagination import PageTokens
from .routes import blp


def init_app(app: Flask, page_token_key: str) -> None:
    app.extensions["runstats_page_tokens"] = PageTokens(page_token_key)
    api.register_blueprint(blp)
