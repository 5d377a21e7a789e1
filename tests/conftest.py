"""Fixtures: one app per backend, a rolled-back transaction per test.

Every API test runs on SQLite; when RUNSTATS_TEST_DATABASE_URL is set it runs
on PostgreSQL too (and RUNSTATS_TEST_REDIS_URL swaps fakeredis for a real
Redis where a test needs one).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import Connection, text

from runstats_app import create_app
from runstats_app.auth import Role, create_token
from runstats_app.extensions import db
from runstats_app.stats.cache import StatsCache

PG_URL = os.environ.get("RUNSTATS_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("RUNSTATS_TEST_REDIS_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI the real services are required: fail loudly instead of skipping."""
    if os.environ.get("RUNSTATS_TEST_REQUIRE_SERVICES") != "1":
        return
    missing = [
        name
        for name, value in (
            ("RUNSTATS_TEST_DATABASE_URL", PG_URL),
            ("RUNSTATS_TEST_REDIS_URL", REDIS_URL),
        )
        if not value
    ]
    if missing:
        pytest.exit(f"required test services not configured: {', '.join(missing)}", returncode=3)
    import redis
    from sqlalchemy import create_engine

    try:
        engine = create_engine(str(PG_URL))
        with engine.connect() as probe:
            probe.execute(text("SELECT 1"))
        engine.dispose()
        redis.Redis.from_url(str(REDIS_URL), socket_connect_timeout=3).ping()
    except Exception as exc:
        pytest.exit(f"required test service unreachable: {exc}", returncode=3)


def backend_url(backend: str, tmp_dir: Path) -> str:
    if backend == "postgresql":
        assert PG_URL is not None
        return PG_URL
    return f"sqlite:///{tmp_dir / 'runstats-test.sqlite'}"


def test_redis_client(backend: str) -> Any:
    """Real Redis beside PostgreSQL when configured; fakeredis otherwise."""
    if backend == "postgresql" and REDIS_URL:
        import redis

        return redis.Redis.from_url(REDIS_URL)
    import fakeredis

    return fakeredis.FakeRedis()


def make_app(url: str, **overrides: Any) -> Flask:
    return create_app({"database_url": url, "secret_key": "test-secret-key", **overrides})


MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")
MIGRATION_LOCK = 7_300_001


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


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def app(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    application = make_app(
        backend_url(backend, tmp_path_factory.mktemp(backend)),
        RUNSTATS_REDIS_CLIENT=test_redis_client(backend),
    )
    with application.app_context():
        migrate_to_head()
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def connection(app: Flask) -> Iterator[Connection]:
    """An outer transaction that every request of the test joins, rolled back at the end."""
    with app.app_context():
        outer = db.engine.connect()
        transaction = outer.begin()
        db.use_connection(outer)
    try:
        yield outer
    finally:
        with app.app_context():
            db.use_connection(None)
        transaction.rollback()
        outer.close()


class StatsCaches:
    """Stats caches of a test's own (key prefix, local store), each in place of the app's."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.original: StatsCache = app.extensions["runstats_stats_cache"]
        self.prefixes: list[str] = []

    def install(self) -> StatsCache:
        prefix = f"test-{uuid.uuid4().hex}:"
        self.prefixes.append(prefix)
        cache = StatsCache(
            self.original.settings, self.app.extensions["runstats_redis"], key_prefix=prefix
        )
        self.app.extensions["runstats_stats_cache"] = cache
        return cache

    def restore(self) -> None:
        self.app.extensions["runstats_stats_cache"] = self.original
        client = self.app.extensions["runstats_redis"]
        for prefix in self.prefixes if client is not None else []:
            for key in client.scan_iter(match=f"{prefix}*", count=500):
                client.delete(key)


@pytest.fixture
def stats_caches(app: Flask) -> Iterator[StatsCaches]:
    caches = StatsCaches(app)
    yield caches
    caches.restore()


@pytest.fixture
def stats_cache(stats_caches: StatsCaches) -> StatsCache:
    """A stats cache of this test's own, in place of the app's."""
    return stats_caches.install()


@pytest.fixture
def client(app: Flask, connection: Connection, stats_cache: StatsCache) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def token_for(app: Flask, connection: Connection) -> Callable[[str, str], str]:
    def make(user: str, role: str = "writer") -> str:
        with app.app_context():
            session = db.session()
            token = create_token(session, user, Role[role])
            session.commit()
            return token

    return make


@pytest.fixture
def auth(token_for: Callable[[str, str], str]) -> Callable[..., dict[str, str]]:
    """Authorization headers for a user with a role (writer by default)."""
    cache: dict[tuple[str, str], str] = {}

    def headers(user: str = "alice", role: str = "writer") -> dict[str, str]:
        if (user, role) not in cache:
            cache[(user, role)] = token_for(user, role)
        return {"Authorization": f"Bearer {cache[(user, role)]}"}

    return headers


@pytest.fixture
def savepoint(app: Flask, connection: Connection) -> Callable[[], Any]:
    """A context manager that undoes what happens inside it (one hypothesis example)."""

    @contextmanager
    def scope() -> Iterator[None]:
        nested = connection.begin_nested()
        try:
            yield
        finally:
            if nested.is_active:
                nested.rollback()

    return scope
