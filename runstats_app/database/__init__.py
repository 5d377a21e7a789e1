"""The database: the primary (writes, and reads that must see them), replicas for reads
that may lag, and one session per request.

Routing is chosen up front, per kind of work, not per statement (SQLAlchemy's
documented reader/writer approach): writes, a single run and its history use
the request's session on the primary, so a client reads its own writes;
lists, stats and history go through `read`, which picks a usable replica
(replicas.py) and falls back to the primary, never to an error, when there is
none or it fails. No session sticks to the primary after a write (GitLab's
load balancer does, replaying a user's last write position): the contract lets
lists and stats lag by up to RUNSTATS_REPLICA_MAX_LAG_MS, and what must not lag
is read from the primary anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask import Flask, current_app
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from ..config import Settings
from ..metrics import database_reads
from .engines import SQLITE_IMMEDIATE, STATEMENT_TAG, make_engine
from .replicas import Replica, ReplicaSet
from .targets import READ, SCAN, SNAPSHOT, Target

__all__ = [
    "READ",
    "SCAN",
    "SNAPSHOT",
    "SQLITE_IMMEDIATE",
    "STATEMENT_TAG",
    "Database",
    "Read",
    "make_engine",
    "write_transaction",
]

log = logging.getLogger(__name__)
PRIMARY, REPLICA = "primary", "replica"
Value = TypeVar("Value")


@dataclass(frozen=True)
class Read(Generic[Value]):
    """What a read found, where, and how far behind the primary its data may be."""

    value: Value
    target: str
    lag_seconds: float


class _AppSession(Session):
    """A session bound to whichever app is current (or the bind tests install)."""

    def get_bind(self, mapper: Any = None, clause: Any = None, **kwargs: Any) -> Any:
        state = current_app.extensions["runstats_db"]
        return state.override_bind or state.primary.engine


class _DatabaseState:
    def __init__(self, primary: Target, replicas: ReplicaSet | None) -> None:
        self.primary = primary
        self.replicas = replicas
        self.override_bind: Connection | None = None


def _unreachable(error: DBAPIError) -> bool:
    """A connection failure (or a standby cancelling for recovery), not a query's own fault."""
    return bool(error.connection_invalidated) or type(error.orig).__name__ in (
        "OperationalError",
        "SerializationFailure",
        "AdminShutdown",
        "ConnectionFailure",
    )


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
        primary = Target(url, settings, "runstats")
        replicas = None
        if settings.replica_urls:
            replicas = ReplicaSet(
                primary.engine,
                [
                    Replica(
                        replica_url,
                        lambda u: Target(u, settings, "runstats-replica", standby=True),
                    )
                    for replica_url in settings.replica_urls
                ],
                settings.replica_max_lag_ms,
            )
        app.extensions["runstats_db"] = _DatabaseState(primary, replicas)

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
        """The primary's engine."""
        return self._state().primary.engine

    @property
    def replicas(self) -> ReplicaSet | None:
        return self._state().replicas

    def maintenance_engine(self) -> Engine:
        """The primary without a statement timeout, for commands that read every run."""
        url = self.engine.url.render_as_string(hide_password=False)
        return make_engine(
            url, statement_timeout_ms=0, application_name="runstats-maintenance", prepared=False
        )

    def read(self, work: Callable[[Session], Value], kind: str = READ) -> Read[Value]:
        """`work` on a usable replica, else on the primary; a replica that fails is skipped.

        `kind`: READ (lists; autocommit on PostgreSQL, see Target), SNAPSHOT (one
        REPEATABLE READ snapshot, read-only), SCAN (the scans' pool). Tests that joined a
        connection read through it.
        """
        state = self._state()
        if state.override_bind is not None:
            return Read(work(self.session()), PRIMARY, 0.0)
        replica = state.replicas.choose() if state.replicas is not None else None
        if replica is not None:
            try:
                with replica.target.session(kind) as session:
                    value = work(session)
                database_reads.labels(target=REPLICA).inc()
                return Read(value, REPLICA, replica.lag_seconds)
            except DBAPIError as exc:
                if not _unreachable(exc):
                    raise
                assert state.replicas is not None
                state.replicas.failed(replica, exc)
        database_reads.labels(target=PRIMARY).inc()
        return Read(self._on_primary(state, work, kind), PRIMARY, 0.0)

    def read_primary(self, work: Callable[[Connection], Value]) -> Value:
        """`work` on the primary, outside the request's transaction where the server allows
        (a read that must see the latest writes, and that writes nothing)."""
        state = self._state()
        if state.override_bind is not None or not state.primary.autocommit_reads:
            return work(self.session().connection())
        with state.primary.connection() as connection:
            return work(connection)

    def _on_primary(
        self, state: _DatabaseState, work: Callable[[Session], Value], kind: str
    ) -> Value:
        if kind == READ and not state.primary.autocommit_reads:
            return work(self.session())
        with state.primary.session(kind) as session:
            return work(session)

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
