"""Maintained counts through gunicorn: concurrent writers on the same runs and users.

Four workers each fold in the background (one at a time holds the lease)
while writers change statuses and annotations of a small set of runs of one
user and one pipeline (the hottest counters); afterwards the counts agree with
the GROUP BY over the runs (`flask stats verify`), and the stats say they were
read from them.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, text

from ..support.probes import wait_for
from ..support.servers import LiveApp, flask_command

WRITERS = 8
RUNS = 12
STEPS = 40


@pytest.fixture
def pg_service(live_service: LiveApp) -> LiveApp:
    if not live_service.env["RUNSTATS_DATABASE_URL"].startswith("postgresql"):
        pytest.skip("the counts are maintained on PostgreSQL only")
    return live_service


def _writer(service: LiveApp, ids: list[str], seed: int) -> int:
    rng = random.Random(seed)
    answered = 0
    with requests.Session() as session:
        session.headers.update(service.headers("alice"))
        for _ in range(STEPS):
            run_id = rng.choice(ids)
            base = f"{service.url}/api/pipeline_runs/{run_id}"
            if rng.random() < 0.3:
                response = session.put(
                    f"{base}/annotations/team",
                    json={"value": rng.choice(["hot", "cold"])},
                    timeout=30,
                )
            else:
                target = rng.choice(["PENDING", "RUNNING", "FAILED", "SUCCEEDED", "CANCELLING"])
                response = session.post(f"{base}/transitions", json={"status": target}, timeout=30)
            assert response.status_code in (200, 409), response.text
            answered += 1
    return answered


def test_concurrent_writers_on_the_hottest_counters_leave_exact_counts(pg_service):
    ids = [
        pg_service.create_run(
            "alice", name="hot-pipeline", max_attempts=3, annotations={"team": "hot"}
        )["id"]
        for _ in range(RUNS)
    ]
    with ThreadPoolExecutor(WRITERS) as pool:
        answered = sum(pool.map(lambda seed: _writer(pg_service, ids, seed), range(WRITERS)))
    assert answered == WRITERS * STEPS
    assert wait_for(lambda: _unfolded(pg_service) == 0, 15, 0.2), "the workers did not fold"
    verified = flask_command(pg_service.env, "stats", "verify", "--samples", "40", "--seed", "4")
    assert "No difference in 40 samples" in verified
    stats = requests.get(
        f"{pg_service.url}/api/pipeline_runs/stats",
        params={"filter_query": '{"and":[{"value_equals":{"key":"team","value":"hot"}}]}'},
        timeout=30,
    )
    assert stats.status_code == 200 and stats.headers["X-Stats-Source"] == "counts"


def _unfolded(service: LiveApp) -> int:
    engine = create_engine(service.env["RUNSTATS_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(text("SELECT count(*) FROM run_count_deltas")).scalar_one()
            )
    finally:
        engine.dispose()
