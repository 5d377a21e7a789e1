"""Folding: the changes the triggers appended, moved into the rollups by one leased process.

One transaction takes a batch of deltas (deleting them), adds them to every
rollup at every grain, and drops the counters that reached zero. While a
rebuild runs, only the changes of runs it has counted already are folded
(rebuild.py says why). Readers sum
rollups and deltas in one snapshot, so they see a batch either still in the
deltas or already in the rollups, never both or neither. Only this folder
writes the rollups, so no writer ever queues on a counter row.

Any worker may fold: a transaction-level advisory lock makes it one at a time
(a lease a dead holder cannot keep). Workers fold every second in a
background thread started by gunicorn's post_worker_init hook;
`flask stats fold` folds from the command line.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from ...degraded import RateLimitedWarning
from ...metrics import counts_fold_rows
from .tables import ROLLUPS, Rollup
from .timeline import ALL_TIME, Grain

log = logging.getLogger(__name__)

FOLD_LOCK = 7_300_013
BATCH_ROWS = 50_000
INTERVAL_SECONDS = 1.0

_TAKE_BATCH = text(
    """
    WITH moved AS (
        DELETE FROM run_count_deltas
        WHERE ctid = ANY (ARRAY(
            SELECT d.ctid FROM run_count_deltas d, run_count_state s
            WHERE s.id = 1 AND (s.ready OR d.run_id <= s.filled_through)
            LIMIT :batch))
        RETURNING hour, created_by, name, status, key, value, runs
    ), grouped AS (
        INSERT INTO run_count_fold
        SELECT hour, created_by, name, status, key, value, sum(runs)
        FROM moved GROUP BY hour, created_by, name, status, key, value
        HAVING sum(runs) <> 0
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM grouped)
    """
)
_FOLD_TABLE = text(
    "CREATE TEMP TABLE IF NOT EXISTS run_count_fold (hour timestamptz, created_by varchar,"
    " name varchar, status varchar, key varchar, value varchar, runs bigint)"
    " ON COMMIT DELETE ROWS"
)
_GRAINS = (
    f"(VALUES ({int(Grain.HOUR)}, f.hour),"
    f" ({int(Grain.DAY)}, date_trunc('day', f.hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),"
    f" ({int(Grain.MONTH)}, date_trunc('month', f.hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),"
    f" ({int(Grain.ALL)}, TIMESTAMPTZ '{ALL_TIME.isoformat()}')) AS g(grain, bucket)"
)


def _touched(rollup: Rollup) -> str:
    """The rollup's keys this batch adds to: (per..., grain, bucket, name, status, runs)."""
    per = [c for c in rollup.columns if c not in ("name", "status")]
    only = ["f.key IS NOT NULL" if rollup.by_annotation else "f.key IS NULL"]
    if rollup.by_creator:
        only.append("f.created_by IS NOT NULL")
    keys = ", ".join([*(f"f.{c}" for c in per), "g.grain", "g.bucket", "f.name", "f.status"])
    return (
        f"SELECT {keys}, sum(f.runs) AS runs FROM run_count_fold f CROSS JOIN LATERAL {_GRAINS}"
        f" WHERE {' AND '.join(only)} GROUP BY {keys}"
    )


def _statements(rollup: Rollup) -> tuple[str, str]:
    table = rollup.table.name
    key_columns = [c for c in rollup.columns if c not in ("name", "status")]
    key_columns += ["grain", "bucket", "name", "status"]
    keys = ", ".join(key_columns)
    add = (
        f"INSERT INTO {table} ({keys}, runs) {_touched(rollup)} HAVING sum(f.runs) <> 0"
        f" ON CONFLICT ({keys}) DO UPDATE SET runs = {table}.runs + excluded.runs"
    )
    match = " AND ".join(f"t.{c} = z.{c}" for c in key_columns)
    drop_zeros = f"DELETE FROM {table} t USING ({_touched(rollup)}) z WHERE t.runs = 0 AND {match}"
    return add, drop_zeros


_ROLLUP_STATEMENTS = [tuple(text(s) for s in _statements(r)) for r in ROLLUPS]


def fold_once(connection: Connection, batch_rows: int = BATCH_ROWS) -> int | None:
    """Fold one batch in the connection's transaction; the rows moved, None without the lease."""
    if not connection.execute(
        text("SELECT pg_try_advisory_xact_lock(:lock)"), {"lock": FOLD_LOCK}
    ).scalar():
        return None
    connection.execute(_FOLD_TABLE)
    moved, groups = connection.execute(_TAKE_BATCH, {"batch": batch_rows}).one()
    if groups:
        for add, drop_zeros in _ROLLUP_STATEMENTS:
            connection.execute(add)
            connection.execute(drop_zeros)
    return int(moved)


def fold_all(engine: Engine, batch_rows: int = BATCH_ROWS) -> int:
    """Fold until no full batch is left (or another process holds the lease); rows moved."""
    total = 0
    while True:
        with engine.begin() as connection:
            moved = fold_once(connection, batch_rows)
        if moved is None:
            return total
        total += moved
        counts_fold_rows.inc(moved)
        if moved < batch_rows:
            return total


class Folder:
    """A daemon thread folding every INTERVAL_SECONDS for the life of a worker process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._warn = RateLimitedWarning(log, interval=60.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None and self.engine.dialect.name == "postgresql":
            self._thread = threading.Thread(target=self._run, name="runstats-fold", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL_SECONDS):
            started = time.monotonic()
            try:
                moved = fold_all(self.engine)
            except SQLAlchemyError as exc:
                self._warn("fold", "counts: folding failed (%s); will retry", type(exc).__name__)
                continue
            if moved:
                log.debug("counts: folded %d changes in %.3f s", moved, time.monotonic() - started)


def start_folding(app: Any) -> Folder | None:
    """Fold in the background of this process (gunicorn's post_worker_init calls it).

    Nothing for an app that is not runstats (the benchmarks' floor shares the config).
    """
    extensions = getattr(app, "extensions", {})
    if "runstats_db" not in extensions:
        return None
    folder: Folder | None = extensions.get("runstats_folder")
    if folder is None:
        folder = extensions["runstats_folder"] = Folder(extensions["runstats_db"].engine)
    folder.start()
    return folder
