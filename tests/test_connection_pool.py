"""Pooled PostgreSQL connections are pinged only after sitting idle, and replaced when dead."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from runstats_app.database import engines, make_engine

from .support.app import PG_URL

pytestmark = pytest.mark.skipif(PG_URL is None, reason="needs RUNSTATS_TEST_DATABASE_URL")


@pytest.fixture
def engine() -> Iterator[Engine]:
    assert PG_URL is not None
    engine = make_engine(PG_URL, statement_timeout_ms=5000)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    """End a server process from outside the engine's pool, as a restart would.

    Returns once the process has exited (and so has written its goodbye to
    the socket): without the timeout argument `pg_terminate_backend` only
    signals, and the check-out could run before the server has said anything.
    """
    assert PG_URL is not None
    outsider = create_engine(PG_URL, poolclass=NullPool)
    with outsider.connect() as connection:
        ended = connection.execute(
            text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}
        ).scalar_one()
    outsider.dispose()
    assert ended, f"backend {pid} still running 5 s after pg_terminate_backend"


def _count_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    original = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(1)
        return original(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def test_a_connection_used_a_moment_ago_is_not_pinged(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(engine)
    pings = _count_pings(engine, monkeypatch)
    assert {_backend_pid(engine) for _ in range(5)} == {first}
    assert pings == []


def test_an_idle_connection_that_died_is_replaced_before_use(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = _backend_pid(engine)
    _terminate(dead)
    monkeypatch.setattr(engines, "PING_AFTER_IDLE_SECONDS", 0.0)
    pings = _count_pings(engine, monkeypatch)
    assert _backend_pid(engine) != dead
    assert pings == [1]


def test_a_connection_the_server_closed_a_moment_ago_is_replaced_before_use(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart right after a request: the server's goodbye is waiting on the socket."""
    dead = _backend_pid(engine)
    _terminate(dead)
    pings = _count_pings(engine, monkeypatch)
    assert _backend_pid(engine) != dead
    assert pings == [1]
