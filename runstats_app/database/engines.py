"""Engines: SQLite made to behave like PostgreSQL, pooled connections checked cheaply, tags."""

from __future__ import annotations

import select
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import StaticPool

SQLITE_IMMEDIATE = "runstats_sqlite_immediate"
STATEMENT_TAG = "runstats_statement_tag"


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


def make_engine(
    url: str,
    statement_timeout_ms: int,
    *,
    pool_size: int = 5,
    max_overflow: int = 5,
    server_settings: Mapping[str, str] | None = None,
    application_name: str = "runstats",
    prepared: bool = True,
    autocommit: bool = False,
) -> Engine:
    """An engine whose connections carry the statement timeout (and other server settings).

    prepared=False: psycopg never prepares a statement, so a statement run many times
    with other values (a rebuild's batches of run ids) is planned for each one, not
    with a generic plan that cannot see how narrow its range is. autocommit=True (on
    PostgreSQL): connections that stay in autocommit, for reads of a statement or two.
    """
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
        settings = {"statement_timeout": str(statement_timeout_ms), **(server_settings or {})}
        kwargs["connect_args"] = {
            "options": " ".join(f"-c {name}={value}" for name, value in settings.items()),
            "connect_timeout": 5,
            "application_name": application_name,
        }
        if not prepared:
            kwargs["connect_args"]["prepare_threshold"] = None
        if autocommit:
            kwargs["isolation_level"] = "AUTOCOMMIT"
    engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, **kwargs)
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
