"""The database: engines, one session per request, and the scans' own small pool.

Scans (stats aggregates that read runs) get an engine of their own: a pool no
larger than the scans one process may run, a shorter statement timeout, and
no parallel workers (on a small machine one parallel scan takes every core),
so that however many scans are asked for, the pool every other route needs is
untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from ..config import Settings
from .engines import SQLITE_IMMEDIATE, STATEMENT_TAG, make_engine

SCAN_SERVER_SETTINGS = {"max_parallel_workers_per_gather": "0"}
__all__ = ["SQLITE_IMMEDIATE", "STATEMENT_TAG", "Database", "make_engine", "write_transaction"]

log = logging.getLogger(__name__)


class _AppSession(Session):
    """A session bound to whichever app is current (or the bind tests install)."""

    def get_bind(self, mapper: Any = None, clause: Any = None, **kwargs: Any) -> Any:
        state = current_app.extensions["runstats_db"]
        return state.override_bind or state.engine


class _DatabaseState:
    def __init__(self, engine: Engine, scan_engine: Engine) -> None:
        self.engine = engine
        self.scan_engine = scan_engine
        self.snapshot_engine = engine
        if engine.dialect.name == "postgresql":
            self.snapshot_engine = engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        self.override_bind: Connection | None = None


class Database:
    """Unbound until `init_app`: importing the package opens no connection."""

    def __init__(self) -> None:
        self.session: scoped_session[Session] = scoped_session(
            sessionmaker(
                class_=_AppSession,
                expire_on_commit=False,
                autoflush=False,
                join_transaction_mode="create_savepoint",
            )
        )

    def init_app(self, app: Flask, url: str, settings: Settings) -> None:
        engine = make_engine(url, settings.statement_timeout_ms)
        scan_engine = engine
        if engine.dialect.name == "postgresql":
            scan_engine = make_engine(
                url,
                settings.scan_timeout_ms,
                pool_size=settings.stats_scans_per_process,
                max_overflow=0,
                server_settings=SCAN_SERVER_SETTINGS,
                application_name="runstats-scan",
            )
        app.extensions["runstats_db"] = _DatabaseState(engine, scan_engine)

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            try:
                self.session.remove()
            except SQLAlchemyError as exc:
                # Ending the transaction failed because the connection died after the
                # response was made (the database restarted): the transaction died with it
                # and the pool has invalidated the connection. The answer stands.
                log.warning("database session teardown failed: %s", type(exc).__name__)
                self.session.registry.clear()

    @staticmethod
    def _state() -> _DatabaseState:
        state: _DatabaseState = current_app.extensions["runstats_db"]
        return state

    @property
    def engine(self) -> Engine:
        return self._state().engine

    def maintenance_engine(self) -> Engine:
        """The database without a statement timeout, for commands that read every run."""
        url = self.engine.url.render_as_string(hide_password=False)
        return make_engine(url, statement_timeout_ms=0, application_name="runstats-maintenance")

    @contextmanager
    def scan_session(self) -> Iterator[Session]:
        """A read-only session on the scans' pool (the test's connection when one is joined)."""
        state = self._state()
        if state.override_bind is not None:
            yield self.session()
            return
        with Session(bind=state.scan_engine) as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextmanager
    def snapshot_session(self) -> Iterator[Session]:
        """A read-only session whose statements all see one snapshot (REPEATABLE READ).

        For the maintained counts: their state and their rows must agree. Read-only
        and without a transaction id, so it runs on a hot standby too.
        """
        state = self._state()
        if state.override_bind is not None:
            yield self.session()
            return
        with Session(bind=state.snapshot_engine) as session:
            try:
                yield session
            finally:
                session.rollback()

    def use_connection(self, connection: Connection | None) -> None:
        """Run the current app's sessions inside `connection` (tests join a transaction)."""
        self.session.remove()
        self._state().override_bind = connection


@contextmanager
def write_transaction(session: Session) -> Iterator[Session]:
    """Start a writing unit of work.

    On SQLite a read transaction (the token lookup, say) cannot safely become a
    write one under WAL: SQLite fails the lock upgrade at once if another
    writer committed meanwhile. So we end it and BEGIN IMMEDIATE, and
    concurrent writers queue on the busy timeout instead. Call it before the
    unit of work has written anything.
    """
    if session.get_bind().dialect.name == "sqlite":
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("write_transaction must start a unit of work")
        if session.in_transaction():
            session.rollback()
        session.connection(execution_options={SQLITE_IMMEDIATE: True})
    yield session
