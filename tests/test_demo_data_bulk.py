"""demo-data into an empty PostgreSQL database: indexes built once at the end, one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, text

from runstats_app.demo import load_demo_data
from runstats_app.demo import sql_loader as demo_sql
from runstats_app.extensions import db

from .support.app import PG_URL, migrated_app
from .support.databases import fresh_database

pytestmark = pytest.mark.skipif(PG_URL is None, reason="needs RUNSTATS_TEST_DATABASE_URL")

RUNS = 2_500  # three batches of BATCH_SIZE (patched below)


@pytest.fixture
def empty_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setattr(demo_sql, "BATCH_SIZE", 1_000)
    with fresh_database("postgresql", tmp_path, PG_URL) as url, migrated_app(url) as app:
        yield app


def _structures(app: Flask) -> set[tuple[str, str]]:
    """Every index and constraint of the run tables, as PostgreSQL defines them."""
    with app.app_context(), db.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:tables)"
                " UNION ALL SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = ANY(CAST(:tables AS regclass[]))"
            ),
            {"tables": list(demo_sql.TABLES)},
        ).all()
    return {(name, definition) for name, definition in rows}


def _counts(app: Flask) -> tuple[int, int, int]:
    with app.app_context(), db.engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in demo_sql.TABLES
        )


def _load(app: Flask, runs: int, stages: list[str] | None = None) -> None:
    with app.app_context():
        load_demo_data(db.session(), runs, seed=5, stage=None if stages is None else stages.append)


def test_an_empty_database_gets_every_index_and_key_back(empty_app: Flask) -> None:
    before = _structures(empty_app)
    assert any(name.startswith("fk_") for name, _ in before)
    assert any("gin_trgm_ops" in definition for _, definition in before)
    stages: list[str] = []
    _load(empty_app, RUNS, stages)
    assert _structures(empty_app) == before
    assert stages == ["Building indexes", "Vacuuming"]
    runs, annotations, history = _counts(empty_app)
    assert runs == RUNS
    assert annotations >= 2 * RUNS
    assert history > RUNS


def test_foreign_keys_rebuilt_after_the_load_hold(empty_app: Flask) -> None:
    _load(empty_app, RUNS)
    with empty_app.app_context(), db.engine.connect() as connection:
        orphans = connection.execute(
            text(
                "SELECT count(*) FROM run_status_history h"
                " WHERE NOT EXISTS (SELECT 1 FROM pipeline_runs r WHERE r.id = h.run_id)"
            )
        ).scalar_one()
        assert orphans == 0
        with pytest.raises(Exception, match="foreign key"):
            connection.execute(
                text("INSERT INTO run_annotations (run_id, key, value) VALUES ('nope', 'k', 'v')")
            )


def test_a_failure_mid_load_leaves_the_database_as_it_was(
    empty_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _structures(empty_app)
    original = demo_sql._batch
    batches: list[int] = []

    def failing_second_batch(session: Any, size: int, draws: dict[str, Any]) -> None:
        batches.append(size)
        if len(batches) == 2:
            raise RuntimeError("disk full")
        original(session, size, draws)

    monkeypatch.setattr(demo_sql, "_batch", failing_second_batch)
    with pytest.raises(RuntimeError, match="disk full"):
        _load(empty_app, RUNS)
    assert _structures(empty_app) == before
    assert _counts(empty_app) == (0, 0, 0)


def test_vacuum_runs_without_the_apps_statement_timeout(empty_app: Flask) -> None:
    timeouts: list[str] = []

    def before_execute(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("VACUUM"):
            timeouts.append(cursor.connection.execute("SHOW statement_timeout").fetchone()[0])

    with empty_app.app_context():
        event.listen(db.engine, "before_cursor_execute", before_execute)
    _load(empty_app, 100)
    assert timeouts == ["0"] * len(demo_sql.TABLES)


def test_a_database_with_runs_keeps_its_indexes_while_loading_more(
    empty_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load(empty_app, 500)
    before = _structures(empty_app)
    dropped: list[int] = []
    original = demo_sql._drop_secondary_structures
    monkeypatch.setattr(
        demo_sql,
        "_drop_secondary_structures",
        lambda session: dropped.append(1) or original(session),
    )
    stages: list[str] = []
    _load(empty_app, RUNS, stages)
    assert dropped == []
    assert stages == ["Vacuuming"]
    assert _structures(empty_app) == before
    assert _counts(empty_app)[0] == 500 + RUNS
