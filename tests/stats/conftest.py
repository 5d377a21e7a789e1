"""Fixtures of the stats tests: one in-memory Redis server per test, shared by the
stores under test (each its own connection, as workers have) and the test itself; a
count of the requests that reached the stats route (not answered in front of it)."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest

from runstats_app.stats import routes


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def redis_client(server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    """A separate connection to the shared server, for the test's own inspection."""
    return fakeredis.FakeRedis(server=server)


@pytest.fixture
def app_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the requests the stats route itself handled."""
    calls: list[int] = []
    original = routes.resolve_stats_request

    def counted() -> Any:
        calls.append(1)
        return original()

    monkeypatch.setattr(routes, "resolve_stats_request", counted)
    return calls
