"""Databases a test owns: created on a PostgreSQL server and dropped, or a new SQLite file."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text


def _admin_engine(url: str) -> Engine:
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def create_database(url: str) -> None:
    """CREATE DATABASE for the database `url` names, through its server's `postgres`."""
    admin = _admin_engine(url)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{make_url(url).database}"'))
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    """DROP DATABASE, disconnecting whoever is still on it."""
    admin = _admin_engine(url)
    try:
        with admin.connect() as connection:
            connection.execute(
                text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
            )
    finally:
        admin.dispose()


@contextmanager
def fresh_database(backend: str, tmp_dir: Path, pg_url: str | None) -> Iterator[str]:
    """An empty database of its own, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_dir / f'live-{uuid.uuid4().hex[:8]}.sqlite'}"
        return
    assert pg_url, "PostgreSQL tests need RUNSTATS_TEST_DATABASE_URL"
    name = f"runstats_live_{uuid.uuid4().hex[:10]}"
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    create_database(url)
    try:
        yield url
    finally:
        drop_database(url)
