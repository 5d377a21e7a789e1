"""Demo data generated inside PostgreSQL: one INSERT ... SELECT per table and batch.

Python only describes the data (the lifecycle paths and their weights, in
shape.py); PostgreSQL draws the random numbers and writes the rows, so no
row crosses the wire. Run ids follow the app's layout (base32 milliseconds,
then 80 random bits) so they sort like ids the API assigns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from ..statuses import RunStatus, is_terminal
from .shape import (
    ACTIVE_PATHS,
    ENVIRONMENTS,
    FINISHED_PATHS,
    PIPELINES,
    SPAN,
    TEAMS,
    USERS,
    retries_of,
)

BATCH_SIZE = 100_000
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# Share of a run's pace spent in each status before leaving it.
TIME_SHARE = {
    RunStatus.QUEUED: 0.05,
    RunStatus.PENDING: 0.1,
    RunStatus.RUNNING: 1.0,
    RunStatus.CANCELLING: 0.05,
}


def _base32(expression: str, chars: int) -> str:
    """SQL for `chars` base32 digits of a bigint expression, most significant first."""
    return " || ".join(
        f"substr('{ALPHABET}', ((({expression}) >> {5 * (chars - 1 - i)}) & 31)::int + 1, 1)"
        for i in range(chars)
    )


def _random_item(parameter: str) -> str:
    """SQL for a uniformly drawn element of the text-array bind parameter `parameter`."""
    array = f"CAST(:{parameter} AS text[])"
    return f"({array})[1 + floor(random() * cardinality({array}))::int]"


FINISHED_FIRST_ID, ACTIVE_FIRST_ID = 1, 101


def _lower_bounds(paths: Any) -> list[float]:
    """Where each path's share of [0, 1) starts: width_bucket() then picks a path in C."""
    total = sum(weight for weight, _ in paths)
    bounds, cumulative = [], 0.0
    for weight, _ in paths:
        bounds.append(cumulative)
        cumulative += weight / total
    return bounds


def _path_rows(paths: Any, first_id: int) -> list[dict[str, Any]]:
    rows = []
    for offset, (_weight, steps) in enumerate(paths):
        statuses = [RunStatus.QUEUED, *steps]
        at, offsets, spent = 0.0, [], []
        for previous in statuses[:-1]:
            share = TIME_SHARE[previous]
            at += share
            offsets.append(at)
            spent.append(share)
        running = [i for i, s in enumerate(steps) if s is RunStatus.RUNNING]
        rows.append(
            {
                "path_id": first_id + offset,
                "statuses": [s.value for s in steps],
                "froms": [s.value for s in statuses[:-1]],
                "offsets": offsets,
                "spent": spent,
                "final": statuses[-1].value,
                "total_offset": at,
                "retries": retries_of(steps),
                "first_running": running[0] + 1 if running else 0,
                "terminal": is_terminal(statuses[-1]),
            }
        )
    return rows


def _setup(session: Session, seed: int | None) -> None:
    session.execute(text("DROP TABLE IF EXISTS pg_temp.demo_paths"))
    session.execute(
        text(
            "CREATE TEMP TABLE demo_paths (path_id int PRIMARY KEY,"
            " statuses text[], froms text[], offsets float8[], spent float8[], final text,"
            " total_offset float8, retries int, first_running int, terminal bool)"
        )
    )
    rows = _path_rows(FINISHED_PATHS, FINISHED_FIRST_ID) + _path_rows(
        ACTIVE_PATHS, ACTIVE_FIRST_ID
    )
    session.execute(
        text(
            "INSERT INTO demo_paths VALUES (:path_id, :statuses, :froms,"
            " :offsets, :spent, :final, :total_offset, :retries, :first_running, :terminal)"
        ),
        rows,
    )
    if seed is not None:
        session.execute(text("SELECT setseed(:s)"), {"s": math.sin(seed)})


def _batch(session: Session, size: int) -> None:
    span_seconds = SPAN.total_seconds()
    for setting in (
        "statement_timeout = 0",
        "synchronous_commit = off",
        "gin_pending_list_limit = '256MB'",
        "work_mem = '256MB'",
    ):
        session.execute(text(f"SET LOCAL {setting}"))
    session.execute(text("DROP TABLE IF EXISTS pg_temp.demo_batch"))
    session.execute(
        text(
            f"""
            CREATE TEMP TABLE demo_batch AS
            WITH drawn AS (
                SELECT g,
                       now() - make_interval(secs => :span * power(random(), 1.5)) AS created_at,
                       random() AS pick, random() AS active_draw, random() AS pace_draw,
                       (random() * 1099511627776)::bigint AS r1,
                       (random() * 1099511627776)::bigint AS r2
                FROM generate_series(1, :size) AS g
            ), chosen AS (
                SELECT d.*,
                       (now() - d.created_at < interval '6 hours'
                        AND d.active_draw < 0.5) AS active
                FROM drawn d
            )
            SELECT c.g, c.created_at, p.*,
                   LEAST(-ln(1 - c.pace_draw) * 900,
                         extract(epoch FROM now() - c.created_at) / (p.total_offset + 0.01))
                       AS pace,
                   {_base32("(extract(epoch FROM c.created_at) * 1000)::bigint", 10)}
                   || {_base32("c.r1", 8)} || {_base32("c.r2", 8)} AS id
            FROM chosen c
            JOIN demo_paths p ON p.path_id = CASE
                WHEN c.active THEN {ACTIVE_FIRST_ID - 1}
                    + width_bucket(c.pick, CAST(:active_lowers AS float8[]))
                ELSE {FINISHED_FIRST_ID - 1}
                    + width_bucket(c.pick, CAST(:finished_lowers AS float8[]))
            END
            """
        ),
        {
            "span": span_seconds,
            "size": size,
            "active_lowers": _lower_bounds(ACTIVE_PATHS),
            "finished_lowers": _lower_bounds(FINISHED_PATHS),
        },
    )
    session.execute(
        text(
            f"""
            INSERT INTO pipeline_runs (id, name, created_by, created_at, updated_at, status,
                status_updated_at, started_at, ended_at, attempt, max_attempts)
            SELECT id,
                   {_random_item("pipelines")},
                   CASE WHEN random() < 0.05 THEN NULL
                        ELSE {_random_item("users")}
                   END,
                   created_at,
                   created_at + make_interval(secs => pace * total_offset),
                   final,
                   created_at + make_interval(secs => pace * total_offset),
                   CASE WHEN first_running > 0
                        THEN created_at + make_interval(secs => pace * offsets[first_running]) END,
                   CASE WHEN terminal
                        THEN created_at + make_interval(secs => pace * total_offset) END,
                   1 + retries,
                   LEAST(10, 1 + retries + floor(random() * 3)::int)
            FROM demo_batch
            ORDER BY id
            """
        ),
        {"pipelines": list(PIPELINES), "users": list(USERS)},
    )
    session.execute(
        text(
            f"""
            INSERT INTO run_annotations (run_id, key, value)
            SELECT id, 'team', {_random_item("teams")}
            FROM demo_batch
            UNION ALL
            SELECT id, 'env', {_random_item("envs")}
            FROM demo_batch
            UNION ALL
            SELECT id, 'git_sha', substr(md5(id), 1, 10) FROM demo_batch WHERE random() < 0.3
            ORDER BY 1, 2
            """
        ),
        {"teams": list(TEAMS), "envs": list(ENVIRONMENTS)},
    )
    session.execute(
        text(
            """
            INSERT INTO run_status_history (run_id, from_status, to_status, at,
                seconds_in_previous_status)
            SELECT b.id, b.froms[k], b.statuses[k],
                   b.created_at + make_interval(secs => b.pace * b.offsets[k]),
                   b.pace * b.spent[k]
            FROM demo_batch b, generate_subscripts(b.statuses, 1) AS k
            ORDER BY b.id, k
            """
        )
    )


TABLES = ("pipeline_runs", "run_annotations", "run_status_history")
_TABLE_OIDS = "CAST(:tables AS regclass[])"


def _load(
    session: Session,
    sizes: list[int],
    seed: int | None,
    progress: Callable[[int], Any],
    commit_each_batch: bool,
) -> None:
    """One loader: its own temporary tables, one transaction per batch unless told otherwise."""
    _setup(session, seed)
    for size in sizes:
        _batch(session, size)
        if commit_each_batch:
            session.commit()
        progress(size)


def _claim_empty_tables(session: Session) -> bool:
    """Lock the run tables for this transaction; True when they hold no run.

    An empty database may be loaded without its secondary indexes: nobody can
    be reading it, and building each index once at the end is far cheaper
    than maintaining it through millions of inserts.
    """
    session.execute(text(f"LOCK TABLE {', '.join(TABLES)} IN ACCESS EXCLUSIVE MODE"))
    return not session.scalar(text("SELECT EXISTS (SELECT 1 FROM pipeline_runs)"))


def _drop_secondary_structures(session: Session) -> list[str]:
    """Drop the indexes and foreign keys of the run tables that no constraint needs.

    Returns the DDL that recreates them exactly as they were (PostgreSQL's own
    definitions), to run in the same transaction once the rows are in.
    """
    tables = {"tables": list(TABLES)}
    indexes = session.execute(
        text(
            "SELECT format('DROP INDEX %I.%I', n.nspname, c.relname),"
            " pg_get_indexdef(i.indexrelid)"
            " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            f" WHERE i.indrelid = ANY({_TABLE_OIDS})"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
            " ORDER BY c.relname"
        ),
        tables,
    ).all()
    foreign_keys = session.execute(
        text(
            "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),"
            " format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,"
            " pg_get_constraintdef(oid))"
            f" FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY({_TABLE_OIDS})"
            " ORDER BY conname"
        ),
        tables,
    ).all()
    for drop, _ in [*foreign_keys, *indexes]:
        session.execute(text(drop))
    return [create for _, create in [*indexes, *foreign_keys]]


def load_demo_data_in_database(
    session: Session,
    count: int,
    seed: int | None = None,
    progress: Callable[[int], Any] | None = None,
    stage: Callable[[str], Any] | None = None,
) -> None:
    """Load in batches, all on one connection.

    Temporary tables live on a connection, so the loader keeps one for its
    whole run (a pooled session could hand a later batch another connection).
    Into empty tables everything is one transaction: secondary indexes and
    foreign keys are dropped, the rows written, and the same indexes and keys
    built again before the commit, so a failure leaves the database as it
    was. Into tables that already hold runs, each batch is its own
    transaction and the indexes are maintained as rows arrive.
    """
    sizes = [min(BATCH_SIZE, count - start) for start in range(0, count, BATCH_SIZE)]
    report = progress or (lambda _size: None)
    announce = stage or (lambda _name: None)
    bind = session.get_bind()
    if not isinstance(bind, Engine):
        _load(session, sizes, seed, report, commit_each_batch=True)
        session.execute(text("ANALYZE pipeline_runs"))
        session.execute(text("ANALYZE run_annotations"))
        session.commit()
        return
    with bind.connect() as connection, Session(bind=connection) as own:
        if _claim_empty_tables(own):
            rebuild = _drop_secondary_structures(own)
            _load(own, sizes, seed, report, commit_each_batch=False)
            announce("Building indexes")
            own.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            for statement in rebuild:
                own.execute(text(statement))
            own.commit()
        else:
            own.rollback()
            _load(own, sizes, seed, report, commit_each_batch=True)
    # VACUUM sets the visibility map, so "my runs" stats are index-only scans
    # from the start instead of after autovacuum's first pass.
    announce("Vacuuming")
    with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in TABLES:
            connection.execute(text(f"VACUUM (ANALYZE) {table}"))
