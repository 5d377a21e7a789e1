"""The homepage at `/`: stats cards, filters, runs table, admin actions and the runs chart.

Plain HTML, CSS and JavaScript modules served by Flask (no build step), under a
strict Content-Security-Policy: no inline script, style or event handler.
"""

from __future__ import annotations

from flask import Flask

from .routes import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
