"""/readyz and the API while the database goes away and comes back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from ..support.servers import GunicornServer, flask_command
from ..support.services import TemporaryPostgres

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def own_database_service(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TemporaryPostgres, GunicornServer]]:
    postgres = TemporaryPostgres().start()
    url = postgres.create_database()
    env = {
        "RUNSTATS_DATABASE_URL": url,
        "RUNSTATS_SECRET_KEY": "readiness",
    }
    flask_command(env, "db", "upgrade")
    server = GunicornServer(env, workers=2, log_path=tmp_path_factory.mktemp("ready") / "g.log")
    try:
        yield postgres, server.start()
    finally:
        server.stop()
        postgres.destroy()


def test_readyz_is_503_with_the_database_stopped_and_200_again_after(
    own_database_service: tuple[TemporaryPostgres, GunicornServer],
) -> None:
    postgres, server = own_database_service
    assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    postgres.stop()
    try:
        down = requests.get(f"{server.url}/readyz", timeout=10)
        assert down.status_code == 503
        assert down.json()["checks"]["database"] == "unavailable"
        listing = requests.get(f"{server.url}/api/pipeline_runs/", timeout=10)
        assert listing.status_code == 503
        assert listing.headers["Retry-After"]
        assert listing.json()["code"] == 503
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    finally:
        postgres.start()
    assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    assert requests.get(f"{server.url}/api/pipeline_runs/", timeout=10).status_code == 200
