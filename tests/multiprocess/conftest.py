"""A live runstats under gunicorn, on a database of its own, for each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..support.app import BACKENDS, PG_URL
from ..support.databases import fresh_database
from ..support.servers import GunicornServer, LiveApp, create_token, flask_command


@pytest.fixture(scope="package", params=BACKENDS)
def live_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApp]:
    tmp_path = tmp_path_factory.mktemp("live")
    with fresh_database(request.param, tmp_path, PG_URL) as url:
        env = {
            "RUNSTATS_DATABASE_URL": url,
            "RUNSTATS_SECRET_KEY": "live-test-secret",
            "WEB_CONCURRENCY": "4",
        }
        flask_command(env, "db", "upgrade")
        tokens = {
            "alice": create_token(env, "alice", "writer"),
            "root": create_token(env, "root", "admin"),
        }
        with GunicornServer(env, workers=4, log_path=tmp_path / "gunicorn.log") as server:
            yield LiveApp(server.url, env, tokens)
