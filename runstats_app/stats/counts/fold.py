"""Folding: the changes the triggers appended, moved into the rollups by one leased process.

One transaction takes a batch of deltas (deleting them), numbers the names,
creators and labels it has not seen, adds the batch to every rollup at each
of its grains, and drops the counters that reached zero (only a batch with a
negative change can leave one). While a
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

from ...database.engines import STATEMENT_TAG
from ...degraded import RateLimitedWarning
from ...metrics import counts_fold_rows
from .tables import NO_CREATOR, ROLLUPS, STATUS_CODES, Rollup
from .timeline import Grain

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
_STATUS_CODE = (
    "array_position(ARRAY["
    + ", ".join(f"'{name}'" for name in STATUS_CODES)
    + "]::varchar[], f.status)::smallint - 1"
)
_BUCKETS = {
    Grain.HOUR: "floor(extract(epoch FROM f.hour) / 3600)::int",
    Grain.DAY: "floor(extract(epoch FROM f.hour) / 86400)::int",
    Grain.MONTH: "((extract(year FROM f.hour AT TIME ZONE 'UTC') - 1970) * 12"
    " + extract(month FROM f.hour AT TIME ZONE 'UTC') - 1)::int",
    Grain.ALL: "0",
}
_DICTIONARIES = [
    text(
        "INSERT INTO run_count_names (name) SELECT DISTINCT name FROM run_count_fold"
        " ON CONFLICT DO NOTHING"
    ),
    text(
        "INSERT INTO run_count_creators (created_by) SELECT DISTINCT created_by"
        " FROM run_count_fold WHERE created_by IS NOT NULL ON CONFLICT DO NOTHING"
    ),
    text(
        "INSERT INTO run_count_labels (key, value) SELECT DISTINCT key, value"
        " FROM run_count_fold WHERE key IS NOT NULL ON CONFLICT DO NOTHING"
    ),
]


def _touched(rollup: Rollup) -> str:
    """The rollup's keys this batch adds to, with the runs it adds: (keys..., runs)."""
    picked = {"grain": "g.grain", "bucket": "g.bucket", "status": _STATUS_CODE}
    joins = []
    where = ["f.key IS NOT NULL" if rollup.by_label else "f.key IS NULL"]
    if rollup.by_name:
        joins.append("JOIN run_count_names n ON n.name = f.name")
        picked["name_id"] = "n.id"
    if rollup.by_label:
        joins.append("JOIN run_count_labels l ON l.key = f.key AND l.value = f.value")
        picked["label_id"] = "l.id"
    if rollup.by_creator:
        joins.append("LEFT JOIN run_count_creators c ON c.created_by = f.created_by")
        picked["creator_id"] = f"coalesce(c.id, {NO_CREATOR})"
        if not rollup.by_label:
            where.append("f.created_by IS NOT NULL")
    grains = ", ".join(f"({int(grain)}, {_BUCKETS[grain]})" for grain in rollup.grains)
    named = ", ".join(f"{picked[key]} AS {key}" for key in rollup.keys)
    keys = ", ".join(picked[key] for key in rollup.keys)
    return (
        f"SELECT {named}, sum(f.runs) AS runs FROM run_count_fold f {' '.join(joins)}"
        f" CROSS JOIN LATERAL (VALUES {grains}) AS g(grain, bucket)"
        f" WHERE {' AND '.join(where)} GROUP BY {keys}"
    )


def _statements(rollup: Rollup) -> tuple[str, str]:
    table = rollup.table.name
    keys = ", ".join(rollup.keys)
    add = (
        f"INSERT INTO {table} ({keys}, runs) {_touched(rollup)} HAVING sum(f.runs) <> 0"
        f" ON CONFLICT ({keys}) DO UPDATE SET runs = {table}.runs + excluded.runs"
    )
    match = " AND ".join(f"t.{key} = z.{key}" for key in rollup.keys)
    drop_zeros = f"DELETE FROM {table} t USING ({_touched(rollup)}) z WHERE t.runs = 0 AND {match}"
    return add, drop_zeros


_ROLLUP_STATEMENTS = [tuple(text(s) for s in _statements(r)) for r in ROLLUPS]


_ANYTHING_TO_FOLD = text("SELECT EXISTS (SELECT 1 FROM run_count_deltas)")
_ANY_NEGATIVE = text("SELECT EXISTS (SELECT 1 FROM run_count_fold WHERE runs < 0)")


def fold_once(connection: Connection, batch_rows: int = BATCH_ROWS) -> int | None:
    """Fold one batch in the connection's transaction; the rows moved, None without the lease.

    With nothing to fold it writes nothing (not even its temporary table, whose
    creation a hot standby would have to replay every second from every worker).
    """
    if not connection.execute(_ANYTHING_TO_FOLD).scalar():
        return 0
    if not connection.execute(
        text("SELECT pg_try_advisory_xact_lock(:lock)"), {"lock": FOLD_LOCK}
    ).scalar():
        return None
    connection.execute(_FOLD_TABLE)
    moved, groups = connection.execute(_TAKE_BATCH, {"batch": batch_rows}).one()
    if groups:
        for dictionary in _DICTIONARIES:
            connection.execute(dictionary)
        # A counter reaches zero only by a negative change: a batch of creations alone
        # (a rebuild's, or a burst of new runs) has no zeros to look for.
        any_negative = connection.execute(_ANY_NEGATIVE).scalar()
        for add, drop_zeros in _ROLLUP_STATEMENTS:
            connection.execute(add)
            if any_negative:
                connection.execute(drop_zeros)
    return int(moved)


FOLD = {STATEMENT_TAG: "counts-fold"}


def fold_all(engine: Engine, batch_rows: int = BATCH_ROWS) -> int:
    """Fold until no full batch is left (or another process holds the lease); rows moved.

    Its statements are tagged `/* runstats:counts-fold */`: every worker asks once a
    second, and a reader of pg_stat_statements can tell that apart from requests."""
    total = 0
    tagged = engine.execution_options(**FOLD)
    while True:
        with tagged.begin() as connection:
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
        folder = extensions["runstats_folder"] = Folder(extensions["runstats_db"].primary.engine)
    folder.start()
    return folder
