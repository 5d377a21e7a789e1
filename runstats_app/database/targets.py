"""A database server as the app uses it: one engine per kind of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from ..config import Settings
from .engines import make_engine

# JIT compilation costs more than it saves on these queries (measured on the flood's
# scans at 1M runs: 919 -> 673, 533 -> 523 and 824 -> 501 ms with it off).
SERVER_SETTINGS = {"jit": "off"}
SCAN_SERVER_SETTINGS = {
    **SERVER_SETTINGS,
    "max_parallel_workers_per_gather": "0",
    # Each scan's filter is new: plan it for its own values, never a generic plan.
    "plan_cache_mode": "force_custom_plan",
}
READ, SNAPSHOT, SCAN = "read", "snapshot", "scan"


class Target:
    """The primary or a replica: general work, snapshots and scans, each its own engine.

    Scans get a pool of their own (as large as the scans a process may run), their
    own statement timeout and no parallel workers, so that however many are asked
    for, the pool every other route needs is untouched. Snapshot reads (the
    maintained counts: their state and rows must agree) are REPEATABLE READ and
    read-only, which a hot standby allows.
    """

    def __init__(
        self, url: str, settings: Settings, application_name: str, standby: bool = False
    ) -> None:
        self.engine = make_engine(
            url,
            settings.statement_timeout_ms,
            server_settings=SERVER_SETTINGS,
            application_name=application_name,
        )
        self.scan_engine = self.engine
        self.snapshot_engine = self.engine
        self.read_engine = self.engine
        self.autocommit_reads = self.engine.dialect.name == "postgresql"
        if self.autocommit_reads:
            # A read of a few statements under READ COMMITTED sees a new snapshot per
            # statement anyway; autocommit gives the same answers without the BEGIN and
            # ROLLBACK round trips, a third of a list page's time on the database. A pool
            # of its own, so that no checkout switches a connection's mode (and back).
            self.read_engine = make_engine(
                url,
                settings.statement_timeout_ms,
                server_settings=SERVER_SETTINGS,
                application_name=application_name,
                autocommit=True,
            )
            self.scan_engine = make_engine(
                url,
                settings.scan_timeout_ms,
                pool_size=settings.stats_scans_per_process,
                max_overflow=0,
                server_settings=SCAN_SERVER_SETTINGS,
                application_name=f"{application_name}-scan",
            )
            # A standby is read-only already; asking psycopg for read-only transactions
            # there would make it ask for read-write ones when the connection is reused,
            # which a standby refuses.
            readonly = {} if standby else {"postgresql_readonly": True}
            self.snapshot_engine = self.engine.execution_options(
                isolation_level="REPEATABLE READ", **readonly
            )

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for reads that must see the latest writes and write nothing."""
        with self.read_engine.connect() as connection:
            yield connection

    def engine_for(self, kind: str) -> Engine:
        return {READ: self.read_engine, SNAPSHOT: self.snapshot_engine, SCAN: self.scan_engine}[
            kind
        ]

    @contextmanager
    def session(self, kind: str) -> Iterator[Session]:
        """A session for reads of `kind`; closed afterwards (its transaction rolled back as
        the connection goes back to the pool), leaving what it loaded usable."""
        with Session(bind=self.engine_for(kind), expire_on_commit=False) as session:
            yield session
