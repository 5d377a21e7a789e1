"""The app under test: the backends it runs on, built with test settings, its schema
migrated and tokens issued in process.

Every API test runs on SQLite; when RUNSTATS_TEST_DATABASE_URL is set it runs
on PostgreSQL too (and RUNSTATS_TEST_REDIS_URL swaps fakeredis for a real
Redis where a test needs one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text

from runstats_app import create_app
from runstats_app.auth import Role, create_token
from runstats_app.extensions import db

from .databases import fresh_database

PG_URL = os.environ.get("RUNSTATS_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("RUNSTATS_TEST_REDIS_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

MIGRATIONS = str(Path(__file__).resolve().parents[2] / "migrations")
MIGRATION_LOCK = 7_300_001


@contextmanager
def session_database(backend: str, tmp_dir: Path) -> Iterator[str]:
    """The test session's database: a SQLite file, or a PostgreSQL database of its own
    beside RUNSTATS_TEST_DATABASE_URL's, dropped afterwards."""
    if backend == "postgresql":
        with fresh_database(backend, tmp_dir, PG_URL) as url:
            yield url
        return
    yield f"sqlite:///{tmp_dir / 'runstats-test.sqlite'}"


def redis_client_for(backend: str) -> Any:
    """Real Redis beside PostgreSQL when configured; fakeredis otherwise."""
    if backend == "postgresql" and REDIS_URL:
        import redis

        return redis.Redis.from_url(REDIS_URL)
    import fakeredis

    return fakeredis.FakeRedis()


def make_app(url: str, **overrides: Any) -> Flask:
    return create_app({"database_url": url, "secret_key": "test-secret-key", **overrides})


def migrate_to_head() -> None:
    """Upgrade the current app's database; xdist workers share PostgreSQL, so serialise."""
    if db.engine.dialect.name != "postgresql":
        upgrade(directory=MIGRATIONS)
        return
    with db.engine.connect() as lock_connection:
        lock_connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        try:
            upgrade(directory=MIGRATIONS)
        finally:
            lock_connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK}
            )
            lock_connection.commit()


@contextmanager
def migrated_app(url: str, **overrides: Any) -> Iterator[Flask]:
    """An app on `url` with its schema at head; its engine disposed afterwards."""
    app = make_app(url, **overrides)
    with app.app_context():
        migrate_to_head()
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()


def issue_token(app: Flask, user: str, role: str = "writer") -> str:
    """A token for `user` with `role` (reader, writer or admin), committed."""
    with app.app_context():
        session = db.session()
        token = create_token(session, user, Role[role])
        session.commit()
        return token
