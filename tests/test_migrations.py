"""The Alembic history: one head, and head matches the models on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import inspect

from runstats_app.extensions import db
from runstats_app.models import autogenerate_filter
from runstats_app.schema import metadata

from .support.app import BACKENDS, MIGRATIONS, PG_URL, make_app
from .support.databases import fresh_database


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path, PG_URL) as url:
        yield url


def test_there_is_exactly_one_head() -> None:
    config = Config(str(Path(MIGRATIONS) / "alembic.ini"))
    config.set_main_option("script_location", MIGRATIONS)
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_upgraded_empty_database_matches_the_models(empty_database_url: str) -> None:
    app = make_app(empty_database_url)
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        engine = db.engine
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_object": autogenerate_filter(engine.dialect.name),
                },
            )
            differences = compare_metadata(context, metadata)
        assert differences == []
        if engine.dialect.name == "postgresql":
            indexes = {ix["name"] for ix in inspect(engine).get_indexes("pipeline_runs")}
            assert "ix_pipeline_runs_name_trgm" in indexes
        engine.dispose()
