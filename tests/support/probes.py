"""What the multi-process tests watch from outside the app: aggregates running in
PostgreSQL, the worker that sent them, whether a request reached the database, and
conditions that become true in time."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import closing, contextmanager
from typing import Any, Protocol

import psutil
import psycopg
import requests
from sqlalchemy import Engine, make_url, text

AGGREGATE = "/* runstats:stats-scan */%GROUP BY pipeline_runs.name, pipeline_runs.status%"
COUNTS_READ = "/* runstats:stats-counts */%"
COMPUTATION = "/* runstats:stats-%"
"""Any stats or history computation: a scan of the runs or a read of the maintained counts."""


def wait_for(condition: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """The first truthy value of `condition` within `timeout`, else its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return condition()


@contextmanager
def runs_table_locked(db: Engine) -> Iterator[None]:
    """Aggregates (and everything else on the runs table) wait until we let go."""
    with db.connect() as connection:
        connection.execute(text("LOCK TABLE pipeline_runs IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            connection.rollback()


def aggregate_client_ports(db: Engine) -> list[int]:
    """Client ports of the backends running an aggregate now."""
    with db.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT client_port FROM pg_stat_activity "
                "WHERE state = 'active' AND query LIKE :q AND pid <> pg_backend_pid()"
            ),
            {"q": AGGREGATE},
        )
        return [int(port) for (port,) in rows]


def pid_connected_from(port: int) -> int | None:
    """The local process whose TCP connection uses `port` (a worker's database socket)."""
    for connection in psutil.net_connections(kind="tcp"):
        if connection.laddr and connection.laddr.port == port and connection.pid:
            return int(connection.pid)
    return None


def clients_of(pid: int, ports: Collection[int]) -> int:
    """Client connections process `pid` has accepted on any of `ports` (a worker's requests
    in progress or queued in it: a gthread worker accepts more than it has threads)."""
    return sum(
        1
        for connection in psutil.Process(pid).net_connections(kind="tcp")
        if connection.status == psutil.CONN_ESTABLISHED and connection.laddr.port in ports
    )


SCAN_TAG = "/* runstats:stats-scan */%"


def running_scans(db: Engine) -> int:
    """Stats scans running now in this database, parallel workers not counted."""
    with db.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                    " AND leader_pid IS NULL AND query LIKE :tag"
                    " AND datname = current_database() AND pid <> pg_backend_pid()"
                ),
                {"tag": SCAN_TAG},
            ).scalar_one()
        )


def statement_calls(db: Engine, pattern: str) -> int:
    """How often statements whose text is LIKE `pattern` ran, per pg_stat_statements."""
    with db.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                    " WHERE query LIKE :pattern"
                ),
                {"pattern": pattern},
            ).scalar_one()
        )


def reset_statement_calls(db: Engine) -> None:
    with db.connect() as connection:
        connection.execute(text("SELECT pg_stat_statements_reset()"))
        connection.commit()


class Sampler:
    """Samples a number in a thread until stopped; keeps the largest seen."""

    def __init__(self, sample: Callable[[], int], interval: float = 0.02) -> None:
        self.sample = sample
        self.interval = interval
        self.highest = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.highest = max(self.highest, self.sample())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


Send = Callable[[], requests.Response]


class DatabaseProbe(Protocol):
    def reached(self, send: Send) -> tuple[requests.Response, bool]:
        """The response to `send()`, and whether answering it ran anything in the database."""


class StatementCount:
    """Statements PostgreSQL ran in one database, as pg_stat_statements counts them
    (the server must preload it), on the app's own tables: what a request that reaches
    the database reads (a token, runs). Left out: this probe's reads, the workers'
    background folding (tagged, once a second, with its BEGIN and COMMIT) and what a
    worker's engine asks when it first connects (version, schema, settings)."""

    def __init__(self, url: str) -> None:
        libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.connection = psycopg.connect(libpq, autocommit=True)
        self.connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def total(self) -> int:
        row = self.connection.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND query NOT LIKE '%pg_stat_statements%'"
            " AND query NOT LIKE '/* runstats:counts-fold */%'"
            " AND query ~* '(pipeline_runs|run_annotations|run_status_history|api_tokens)'"
        ).fetchone()
        assert row is not None
        return int(row[0])

    def reached(self, send: Send) -> tuple[requests.Response, bool]:
        before = self.total()
        response = send()
        return response, self.total() > before

    def close(self) -> None:
        self.connection.close()


class TablesAway:
    """SQLite keeps no statement counts: instead every table of the app is renamed
    away while the request is answered, so one that reaches a query fails (a 503)."""

    def __init__(self, url: str) -> None:
        database = make_url(url).database
        assert database, url
        self.path = database

    def reached(self, send: Send) -> tuple[requests.Response, bool]:
        with closing(sqlite3.connect(self.path, isolation_level=None)) as connection:
            tables = [
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name NOT LIKE 'sqlite_%' AND name <> 'alembic_version'"
                )
            ]
            for table in tables:
                connection.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_away"')
            try:
                response = send()
            finally:
                for table in tables:
                    connection.execute(f'ALTER TABLE "{table}_away" RENAME TO "{table}"')
        return response, response.status_code == 503
