"""Fixtures: one app per backend (tests/support/app.py), a rolled-back transaction per test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, text

from runstats_app.extensions import db
from runstats_app.stats.cache import StatsCache

from .support.app import (
    BACKENDS,
    PG_URL,
    REDIS_URL,
    issue_token,
    migrated_app,
    redis_client_for,
    session_database,
)
from .support.stats import StatsCaches


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


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def app(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One database per backend and xdist worker: a command's own connection (demo-data's
    rebuild locks the deltas) must not wait on another worker's open test transaction."""
    with (
        session_database(backend, tmp_path_factory.mktemp(backend)) as url,
        migrated_app(url, RUNSTATS_REDIS_CLIENT=redis_client_for(backend)) as application,
    ):
        yield application


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
    """The test client. Each request pushes an app context of its own, whose teardown
    ends the request's database session: one session per request, as in production."""
    return app.test_client()


@pytest.fixture
def token_for(app: Flask, connection: Connection) -> Callable[[str, str], str]:
    def make(user: str, role: str = "writer") -> str:
        return issue_token(app, user, role)

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
