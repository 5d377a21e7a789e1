"""The databases a run measures: whether one exists, its schema revision, loading demo runs."""

from __future__ import annotations

import time

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from .harness.processes import ROOT, flask_cli


def database_exists(url: str) -> bool:
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            return bool(
                connection.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :name"),
                    {"name": make_url(url).database},
                ).scalar()
            )
    finally:
        admin.dispose()


def code_head() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


def schema_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        try:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:
            return None


# The platform the bench measures: a real one's cardinalities (README: Demo data at scale).
DEMO_DATA_ARGS = ("--users", "500", "--pipelines", "5000", "--teams", "30", "--seed", "42")


def demo_data_command(runs: int) -> str:
    return f"flask --app runstats_app demo-data --runs {runs} {' '.join(DEMO_DATA_ARGS)}"


def load_demo_runs(url: str, runs: int) -> float:
    """`flask db upgrade` and `flask demo-data --runs N` of DEMO_DATA_ARGS; seconds it took."""
    env = {"RUNSTATS_DATABASE_URL": url}
    flask_cli(env, "db", "upgrade", timeout=600)
    started = time.perf_counter()
    flask_cli(env, "demo-data", "--runs", str(runs), *DEMO_DATA_ARGS, timeout=3 * 3600)
    return time.perf_counter() - started
