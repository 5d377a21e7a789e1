"""Engine and session management: one engine per app, one session per request."""

from __future__ import annotations

import logging
import select
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session, scoped_session, sessionmaker
from sqlalchemy.pool import StaticPool

SQLITE_IMMEDIATE = "runstats_sqlite_immediate"
STATEMENT_TAG = "runstats_statement_tag"

log = logging.getLogger(__name__)


def _sqlite_lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _configure_sqlite(engine: Engine) -> None:
    """Make pysqlite transactional and Unicode-aware like PostgreSQL.

    pysqlite's own transaction handling never emits BEGIN for SELECTs, which
    breaks SAVEPOINTs and read-then-write atomicity; we emit BEGIN ourselves
    (IMMEDIATE for sessions that announced a write, so two writers queue on the
    busy timeout instead of failing to upgrade their locks). SQLite's lower()
    only folds ASCII; replacing it keeps `value_contains` case-insensitive for
    every letter, as on PostgreSQL.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.create_function("lower", 1, _sqlite_lower, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(SQLITE_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, statement_timeout_ms: int) -> Engine:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 15}
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        _tag_statements(engine)
        return engine
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {
            "options": f"-c statement_timeout={statement_timeout_ms}",
            "connect_timeout": 5,
            "application_name": "runstats",
        }
    engine = create_engine(url, pool_size=5, max_overflow=5, **kwargs)
    _ping_idle_connections(engine)
    _tag_statements(engine)
    return engine


def _tag_statements(engine: Engine) -> None:
    """Prefix statements run with the STATEMENT_TAG execution option by `/* runstats:<tag> */`.

    So an operator (and a test) can tell the stats scans apart in
    pg_stat_activity and pg_stat_statements, whatever filter built them.
    """

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _tag(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, context: Any, _many: bool
    ) -> tuple[str, Any]:
        tag = context.execution_options.get(STATEMENT_TAG) if context is not None else None
        if tag:
            statement = f"/* runstats:{tag} */ {statement}"
        return statement, parameters


PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN = "runstats_checked_in"


def _ping_idle_connections(engine: Engine) -> None:
    """Pre-ping a pooled connection only when it may have died while in the pool.

    Pinging every checkout costs a round trip per request (a seventh of a
    status change). A connection is pinged, and replaced when dead, if it sat
    idle for a second or more, or if the server sent it something while it
    was idle: PostgreSQL writes to an idle connection only to say it is
    closing it (a restart, pg_terminate_backend), so that check, one
    zero-timeout poll of the socket, catches a restart however recent. What
    neither catches, a host that vanished without closing its sockets, fails
    the request that meets it, and the pool then recycles every connection.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN)
        if checked_in is None:
            return
        recent = time.monotonic() - checked_in < PING_AFTER_IDLE_SECONDS
        if recent and not _server_spoke(dbapi_connection):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("a pooled connection died while idle") from exc


def _server_spoke(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket has input waiting (or cannot be polled)."""
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError, AttributeError):
        return True
    return bool(readable)


class _AppSession(Session):
    """A session bound to whichever app is current (or the bind tests install)."""

    def get_bind(self, mapper: Any = None, clause: Any = None, **kwargs: Any) -> Any:
        state = current_app.extensions["runstats_db"]
        return state.override_bind or state.engine


class _DatabaseState:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
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

    def init_app(self, app: Flask, url: str, statement_timeout_ms: int) -> None:
        app.extensions["runstats_db"] = _DatabaseState(make_engine(url, statement_timeout_ms))

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
