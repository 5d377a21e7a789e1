"""Fill or recompute the counts online, in batches of runs, while writes continue.

1. Reset, with the deltas table locked (in-flight writers finish first): record
   changes from now on (tracking), not ready (the stats scan meanwhile), nothing
   counted (filled_through ''), everything cleared.
2. Batches in run id order, each in one REPEATABLE READ snapshot S: count the
   batch's runs as S sees them (written as deltas, which the folder moves into
   the rollups), delete the batch's deltas S sees (their changes are in that
   count), and advance filled_through. Changes committed after S keep their
   deltas and are folded on top. The folder folds only runs at or below
   filled_through, so nothing is folded before its run is counted.
3. The last batch counts every run above the last position and sets ready.

No row or table is locked beyond the brief reset, and the counts are exact
whoever writes meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from .fold import fold_all
from .tables import ROLLUPS

BATCH_RUNS = 50_000

_COUNT_RANGE = """
    INSERT INTO run_count_deltas (run_id, hour, created_by, name, status, key, value, runs)
    SELECT CAST(:mark AS varchar), run_counts_hour(r.created_at), r.created_by, r.name,
           r.status, NULL, NULL, count(*)
    FROM pipeline_runs r WHERE r.id > :after {until}
    GROUP BY 2, 3, 4, 5
    UNION ALL
    SELECT CAST(:mark AS varchar), run_counts_hour(r.created_at), r.created_by, r.name,
           r.status, a.key, a.value, count(*)
    FROM pipeline_runs r JOIN run_annotations a ON a.run_id = r.id
    WHERE r.id > :after {until} AND a.run_id > :after {annotations_until}
      AND NOT EXISTS (SELECT 1 FROM run_count_untracked_keys u WHERE u.key = a.key)
    GROUP BY 2, 3, 4, 5, 6, 7
"""
_FORGET_RANGE = "DELETE FROM run_count_deltas WHERE run_id > :after {until}"
_UNTIL = "AND {column} <= :until"


def stop_counting(engine: Engine) -> None:
    """Record no changes and read no counts (the stats scan) until the next rebuild.

    For bulk loads: counting each loaded run as a change would cost more than one
    rebuild afterwards.
    """
    with engine.begin() as connection:
        connection.execute(text("LOCK TABLE run_count_deltas IN EXCLUSIVE MODE"))
        connection.execute(text("UPDATE run_count_state SET tracking = false, ready = false"))
        connection.execute(text("DELETE FROM run_count_deltas"))


@dataclass(frozen=True)
class RebuildReport:
    runs: int
    batches: int


def _reset(connection: Connection, untrack: Collection[str], track: Collection[str]) -> None:
    connection.execute(text("LOCK TABLE run_count_deltas IN EXCLUSIVE MODE"))
    for key in track:
        connection.execute(text("DELETE FROM run_count_untracked_keys WHERE key = :k"), {"k": key})
    for key in untrack:
        connection.execute(
            text("INSERT INTO run_count_untracked_keys (key) VALUES (:k) ON CONFLICT DO NOTHING"),
            {"k": key},
        )
    connection.execute(
        text("UPDATE run_count_state SET tracking = true, ready = false, filled_through = ''")
    )
    connection.execute(text("DELETE FROM run_count_deltas"))
    connection.execute(text(f"TRUNCATE {', '.join(r.table.name for r in ROLLUPS)}"))


def _count(connection: Connection, after: str, until: str | None) -> int:
    """Count runs in (after, until] as this snapshot sees them; the number of runs.

    The range's deltas this snapshot sees go first: their changes are in the count.
    """
    params = {"after": after, "until": until, "mark": until or after}
    bounded = until is not None
    connection.execute(
        text(_FORGET_RANGE.format(until=_UNTIL.format(column="run_id") if bounded else "")),
        params,
    )
    connection.execute(
        text(
            _COUNT_RANGE.format(
                until=_UNTIL.format(column="r.id") if bounded else "",
                annotations_until=_UNTIL.format(column="a.run_id") if bounded else "",
            )
        ),
        params,
    )
    runs = connection.execute(
        text(
            "SELECT count(*) FROM pipeline_runs WHERE id > :after"
            + (" AND id <= :until" if bounded else "")
        ),
        params,
    ).scalar_one()
    return int(runs)


def _batch_end(connection: Connection, after: str, batch_runs: int) -> str | None:
    """The id that ends a full batch after `after`; None when fewer runs are left."""
    found = connection.execute(
        text("SELECT id FROM pipeline_runs WHERE id > :after ORDER BY id OFFSET :skip LIMIT 1"),
        {"after": after, "skip": batch_runs - 1},
    ).scalar()
    return None if found is None else str(found)


def rebuild(
    engine: Engine,
    *,
    untrack: Collection[str] = (),
    track: Collection[str] = (),
    batch_runs: int = BATCH_RUNS,
    progress: Callable[[int], object] | None = None,
) -> RebuildReport:
    with engine.begin() as connection:
        _reset(connection, untrack, track)
    snapshots = engine.execution_options(isolation_level="REPEATABLE READ")
    after, counted, batches = "", 0, 0
    while True:
        with snapshots.begin() as connection:
            until = _batch_end(connection, after, batch_runs)
            runs = _count(connection, after, until)
            if until is None:
                connection.execute(
                    text("UPDATE run_count_state SET ready = true, filled_through = ''")
                )
            else:
                connection.execute(
                    text("UPDATE run_count_state SET filled_through = :until"), {"until": until}
                )
        counted += runs
        batches += 1
        if progress is not None:
            progress(runs)
        fold_all(engine)
        if until is None:
            _vacuum(engine)
            return RebuildReport(counted, batches)
        after = until


DICTIONARIES = ("run_count_names", "run_count_creators", "run_count_labels")


def _vacuum(engine: Engine) -> None:
    """Give back the space the batches' deltas took, and plan the new rollups well: the
    dictionaries too (without statistics, a substring of names was estimated at one name
    of 5,000 where 1,346 matched, and a 40 ms read took 4 s at 1M runs)."""
    tables = ", ".join(["run_count_deltas", *DICTIONARIES, *(r.table.name for r in ROLLUPS)])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM (ANALYZE) {tables}"))
