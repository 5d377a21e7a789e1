"""Fixtures of the stats tests: one in-memory Redis server per test, shared by the
stores under test (each its own connection, as workers have) and the test itself."""

from __future__ import annotations

import fakeredis
import pytest


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def redis_client(server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    """A separate connection to the shared server, for the test's own inspection."""
    return fakeredis.FakeRedis(server=server)
