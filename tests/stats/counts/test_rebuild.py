"""Filling the counts online while writes go on, and verifying them (PostgreSQL).

These need committed data and transactions of their own, so each runs on a
fresh database rather than in the rolled-back test transaction.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from runstats_app.stats.counts.fold import fold_all
from runstats_app.stats.counts.rebuild import rebuild
from runstats_app.stats.counts.verify import CountsNotReady, verify

from ...support.app import PG_URL
from ...support.databases import fresh_database
from ...support.servers import flask_command

pytestmark = pytest.mark.skipif(PG_URL is None, reason="needs RUNSTATS_TEST_DATABASE_URL")

RUNS = 3000


@pytest.fixture
def loaded(tmp_path: Path) -> Iterator[tuple[Engine, dict[str, str]]]:
    with fresh_database("postgresql", tmp_path, PG_URL) as url:
        env = {"RUNSTATS_DATABASE_URL": url}
        flask_command(env, "db", "upgrade")
        flask_command(env, "demo-data", "--runs", str(RUNS), "--seed", "5")
        engine = create_engine(url)
        try:
            yield engine, env
        finally:
            engine.dispose()


class Writer(threading.Thread):
    """Changes runs in every way the counts follow, in SQL, until stopped."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.rng = random.Random(3)
        self.stop = threading.Event()
        self.writes = 0

    def run(self) -> None:
        with self.engine.connect() as connection:
            ids = [row[0] for row in connection.execute(text("SELECT id FROM pipeline_runs"))]
        statements = [
            "UPDATE pipeline_runs SET status = 'CANCELLED' WHERE id = :id",
            "UPDATE pipeline_runs SET created_by = 'zoe', name = 'etl-moved' WHERE id = :id",
            "UPDATE run_annotations SET value = 'moved' WHERE run_id = :id AND key = 'team'",
            "DELETE FROM run_annotations WHERE run_id = :id AND key = 'env'",
            "DELETE FROM pipeline_runs WHERE id = :id",
            "INSERT INTO pipeline_runs (id, name, created_by, created_at, updated_at, status,"
            " status_updated_at, attempt, max_attempts) SELECT"
            " left(:id, 20) || 'zzzzzz', 'new', 'zoe', now(), now(), 'QUEUED', now(), 1, 1"
            " ON CONFLICT DO NOTHING",
        ]
        while not self.stop.is_set():
            with self.engine.begin() as connection:
                connection.execute(text(self.rng.choice(statements)), {"id": self.rng.choice(ids)})
            self.writes += 1


def test_a_rebuild_beside_concurrent_writes_leaves_exact_counts(loaded):
    engine, _ = loaded
    writer = Writer(engine)
    writer.start()
    try:
        report = rebuild(engine, batch_runs=250)
    finally:
        writer.stop.set()
        writer.join(30)
    assert report.batches > 5 and writer.writes > 20
    fold_all(engine)
    assert verify(engine, samples=60, seed=1) == []


def test_verify_finds_a_counter_that_is_wrong(loaded):
    engine, _ = loaded
    rebuild(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE run_counts SET runs = runs + 1 WHERE grain = 3 AND ctid ="
                " (SELECT ctid FROM run_counts WHERE grain = 3 ORDER BY runs DESC LIMIT 1)"
            )
        )
    assert verify(engine, samples=20, seed=2)


def test_verify_refuses_counts_that_are_not_ready(loaded):
    engine, _ = loaded
    with engine.begin() as connection:
        connection.execute(text("UPDATE run_count_state SET ready = false"))
    with pytest.raises(CountsNotReady):
        verify(engine, samples=1)


def test_the_commands_rebuild_untrack_and_verify(loaded):
    engine, env = loaded
    output = flask_command(
        env, "stats", "rebuild", "--batch-runs", "700", "--untrack-key", "git_sha"
    )
    assert "the counts are ready" in output
    with engine.connect() as connection:
        keys = connection.execute(text("SELECT key FROM run_count_untracked_keys")).scalars()
        assert list(keys) == ["git_sha"]
    assert "No difference in 30 samples" in flask_command(
        env, "stats", "verify", "--samples", "30"
    )
