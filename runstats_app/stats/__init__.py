"""Stats: counts by status for a filter, cached and shared by every worker and host."""

from __future__ import annotations

from flask import Flask

from ..config import Settings
from ..extensions import api
from . import cli, shortcut
from .cache import CacheSettings, StatsCache
from .routes import blp


def init_app(app: Flask, settings: Settings) -> None:
    """The routes, the cache they share (Redis when configured), the hit shortcut, the CLI."""
    app.extensions["runstats_stats_cache"] = StatsCache(
        CacheSettings(
            ttl_ms=settings.stats_cache_ttl * 1000,
            grace_ms=settings.stats_cache_grace * 1000,
            lease_ms=settings.lease_ms,
            wait_ms=settings.wait_ms,
            scans_per_process=settings.stats_scans_per_process,
            scans_total=settings.stats_scans_total,
        ),
        app.extensions["runstats_redis"],
    )
    api.register_blueprint(blp)
    cli.init_app(app)
    shortcut.install(app)
