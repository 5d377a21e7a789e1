"""The read-only run statements on PostgreSQL, run on the driver's cursor.

A page and a single run are two and one plain statements whose results are
only written out. Profiled under load, SQLAlchemy's execution context, cache
key, events and result processing cost more CPU than psycopg's whole round
trip, on every request. So SQLAlchemy builds and compiles each statement
(the list shares the stats' WHERE builder) once per shape, a bounded memo
keeps its SQL text and parameters, and psycopg runs it. The values go to the
driver as they are: the statements' only bind processing, UTCDateTime's, is a
conversion to UTC that `timestamptz` makes itself. Timestamps come back in the
connection's time zone and are turned to UTC here, as UTCDateTime would.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from datetime import UTC
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.exc import DBAPIError, StatementError

from .records import RUN_COLUMNS

TIMESTAMPS = tuple(
    index
    for index, name in enumerate(RUN_COLUMNS)
    if name in ("created_at", "updated_at", "status_updated_at", "started_at", "ended_at")
)
Compiled = tuple[str, dict[str, Any]]


class CompiledStatements:
    """A bounded LRU: a statement's shape (and values) -> its SQL text and parameters."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Compiled] = OrderedDict()
        self._lock = threading.Lock()

    def compiled(
        self,
        key: Hashable,
        connection: Connection,
        build: Any,
        placeholders: Mapping[str, Any],
    ) -> Compiled:
        """The entry for `key`, compiling `build()` with `placeholders` on a miss."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        statement: Select[Any] = build()
        state = statement.compile(dialect=connection.dialect).construct_expanded_state(
            dict(placeholders)
        )
        found = (state.statement, dict(state.parameters))
        with self._lock:
            self._entries[key] = found
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return found


statements = CompiledStatements()


def on_driver(connection: Connection) -> bool:
    """Whether reads on `connection` take the driver's cursor (PostgreSQL), else Core's."""
    return connection.dialect.name == "postgresql"


def fetch(
    connection: Connection, key: Hashable, build: Any, values: Mapping[str, Any]
) -> Sequence[Any]:
    """Every row of `build()` with `values`, its SQL compiled once per `key` (the first
    call's values are its placeholders) and run on the driver's cursor."""
    sql, parameters = statements.compiled(key, connection, build, values)
    parameters = {**parameters, **values}
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, parameters)
        return cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as error:
        raise _as_sqlalchemy_error(connection, sql, parameters, error) from error
    finally:
        cursor.close()


def _as_sqlalchemy_error(
    connection: Connection, sql: str, parameters: Mapping[str, Any], error: Any
) -> StatementError:
    """What SQLAlchemy raises for a driver error (so the app's handlers answer it, a lost
    server as 503), the connection invalidated when the server is gone, as SQLAlchemy
    does, so the pool never hands out the dead connection again."""
    dialect = connection.dialect
    gone = dialect.is_disconnect(error, connection.connection.dbapi_connection, None)
    if gone:
        connection.invalidate(error)
    return DBAPIError.instance(
        sql,
        parameters,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=gone,
        dialect=dialect,
    )


def run_rows(
    connection: Connection, key: Hashable, build: Any, values: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """Rows of a statement whose RUN_COLUMNS come first, timestamps in UTC: fetched on the
    driver where it applies, through SQLAlchemy elsewhere (UTCDateTime converts there)."""
    if not on_driver(connection):
        return connection.execute(build(), values).all()
    return [in_utc(row) for row in fetch(connection, key, build, values)]


def in_utc(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row whose RUN_COLUMNS come first, with its timestamps in UTC."""
    values = list(row)
    for index in TIMESTAMPS:
        value = values[index]
        if value is not None:
            values[index] = value.astimezone(UTC)
    return tuple(values)
