"""runstats: pipeline run records, rich filters and shared cached status counts."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from .config import Settings

log = logging.getLogger(__name__)

API_TITLE = "runstats"
API_VERSION = "1"


def create_app(config: Settings | Mapping[str, Any] | None = None) -> Flask:
    """Build the app; nothing connects until a request or command needs it."""
    if isinstance(config, Settings):
        settings = config
    else:
        settings = Settings.from_env().with_overrides(config or {})

    _configure_logging(settings.log_level)
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/api/docs/assets/",
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=64 * 1024,
        RUNSTATS=settings,
    )
    app.config.update(dict(settings.extra))
    app.json.sort_keys = False  # type: ignore[attr-defined]

    database_url = settings.database_url or _default_sqlite_url(app)
    # Kept out of app.config["SECRET_KEY"]: that would make Flask open a signed
    # cookie session on every request, which nothing here uses.
    page_token_key = settings.secret_key or _instance_secret(app)

    from . import (
        auth,
        cli,
        docs,
        errors,
        health,
        openapi,
        proxies,
        redis_client,
        request_limits,
        requestlog,
        runs,
        security,
        stats,
        web,
    )
    from .extensions import api, db, migrate

    requestlog.init_app(app)
    db.init_app(app, database_url, settings)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    redis_client.init_app(app, settings)
    openapi.init_app(app, api)
    auth.init_app(app, db.read_primary)
    stats.init_app(app, settings)
    runs.init_app(app, page_token_key)
    health.init_app(app)
    docs.init_app(app)
    web.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    cli.init_app(app)
    proxies.init_app(app, settings)
    request_limits.init_app(app)
    return app


def _configure_logging(level: str) -> None:
    """Log to stderr (gunicorn collects it) unless the host process already configured logging."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("runstats_app").setLevel(level.upper())


def _default_sqlite_url(app: Flask) -> str:
    os.makedirs(app.instance_path, exist_ok=True)
    return f"sqlite:///{Path(app.instance_path) / 'runstats.sqlite'}"


def _instance_secret(app: Flask) -> str:
    """A per-installation key for signing page tokens when none is configured.

    Kept in the instance folder so every worker of one host agrees; set
    RUNSTATS_SECRET_KEY when several hosts serve the same database.
    """
    os.makedirs(app.instance_path, exist_ok=True)
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        candidate = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return path.read_text().strip()
