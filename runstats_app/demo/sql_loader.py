"""Demo data generated inside PostgreSQL: one INSERT ... SELECT per table and batch.

Python only describes the data (the catalog of teams, people and pipelines,
the lifecycle paths and every weight: shape.py, catalog.py); PostgreSQL draws
the random numbers and writes the rows, so no run crosses the wire. Run ids
follow the app's layout (base32 milliseconds, then 80 random bits) so they
sort like ids the API assigns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from ..statuses import RunStatus, is_terminal
from .catalog import build_catalog
from .shape import (
    ACTIVE_PATHS,
    ACTIVE_SHARE_OF_RECENT,
    FINISHED_PATHS,
    GIT_SHA_SHARE,
    OUTSIDE_TEAM_SHARE,
    RECENCY,
    RECENT,
    SERVICE_SHARE,
    SPAN,
    SYSTEM_SHARE,
    DemoShape,
    retries_of,
)
from .sql_catalog import create_catalog_tables, lower_bounds

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


def _draw(lowers: str) -> str:
    """SQL for a weighted draw: the 1-based index of an item (sql_catalog.py)."""
    return f"width_bucket(random(), CAST(:{lowers} AS float8[]))"


FINISHED_FIRST_ID, ACTIVE_FIRST_ID = 1, 101


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


def _setup(session: Session, shape: DemoShape, seed: int | None) -> dict[str, Any]:
    """Create the loader's temporary tables; return the batches' bind parameters."""
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
    draws = create_catalog_tables(session, build_catalog(shape))
    if seed is not None:
        session.execute(text("SELECT setseed(:s)"), {"s": math.sin(seed)})
    return {
        **draws,
        "span": SPAN.total_seconds(),
        "recency": RECENCY,
        "recent": RECENT,
        "active_share": ACTIVE_SHARE_OF_RECENT,
        "active_lowers": lower_bounds([weight for weight, _ in ACTIVE_PATHS]),
        "finished_lowers": lower_bounds([weight for weight, _ in FINISHED_PATHS]),
        "system_share": SYSTEM_SHARE,
        "service_share": SERVICE_SHARE,
        "outside_share": OUTSIDE_TEAM_SHARE,
        "git_sha_share": GIT_SHA_SHARE,
    }


def _batch(session: Session, size: int, draws: dict[str, Any]) -> None:
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
                       now() - make_interval(secs => :span * power(random(), :recency))
                           AS created_at,
                       random() AS pick, random() AS active_draw, random() AS pace_draw,
                       (random() * 1099511627776)::bigint AS r1,
                       (random() * 1099511627776)::bigint AS r2,
                       {_draw("pipeline_lowers")} AS pipeline_rank,
                       random() AS creator_kind, random() AS outside_draw,
                       random() AS creator_draw,
                       {_draw("service_lowers")} AS service_number,
                       {_draw("people_lowers")} AS person_number,
                       {_draw("env_lowers")} AS env_number,
                       random() < :git_sha_share AS has_git_sha
                FROM generate_series(1, :size) AS g
            ), chosen AS (
                SELECT d.*, q.name, q.team,
                       (now() - d.created_at < :recent
                        AND d.active_draw < :active_share) AS active,
                       CASE
                           WHEN d.creator_kind < :system_share THEN NULL
                           WHEN d.creator_kind < :system_share + :service_share
                               THEN :people + d.service_number
                           WHEN d.outside_draw < :outside_share THEN d.person_number
                           ELSE width_bucket(q.team_index + 0.5 * d.creator_draw,
                                             CAST(:member_lowers AS float8[]))
                       END AS creator_number
                FROM drawn d
                JOIN demo_pipelines q ON q.rank = d.pipeline_rank
            )
            SELECT c.g, c.created_at, c.name, c.team, u.name AS created_by,
                   (CAST(:envs AS text[]))[c.env_number] AS env, c.has_git_sha, p.*,
                   LEAST(-ln(1 - c.pace_draw) * 900,
                         extract(epoch FROM now() - c.created_at) / (p.total_offset + 0.01))
                       AS pace,
                   {_base32("(extract(epoch FROM c.created_at) * 1000)::bigint", 10)}
                   || {_base32("c.r1", 8)} || {_base32("c.r2", 8)} AS id
            FROM chosen c
            LEFT JOIN demo_creators u ON u.number = c.creator_number
            JOIN demo_paths p ON p.path_id = CASE
                WHEN c.active THEN {ACTIVE_FIRST_ID - 1}
                    + width_bucket(c.pick, CAST(:active_lowers AS float8[]))
                ELSE {FINISHED_FIRST_ID - 1}
                    + width_bucket(c.pick, CAST(:finished_lowers AS float8[]))
            END
            """
        ),
        {**draws, "size": size},
    )
    session.execute(
        text(
            """
            INSERT INTO pipeline_runs (id, name, created_by, created_at, updated_at, status,
                status_updated_at, started_at, ended_at, attempt, max_attempts)
            SELECT id, name, created_by, created_at,
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
        )
    )
    session.execute(
        text(
            """
            INSERT INTO run_annotations (run_id, key, value)
            SELECT id, 'team', team FROM demo_batch
            UNION ALL
            SELECT id, 'env', env FROM demo_batch
            UNION ALL
            SELECT id, 'git_sha', substr(encode(sha256(convert_to(id, 'UTF8')), 'hex'), 1, 40)
            FROM demo_batch WHERE has_git_sha
            ORDER BY 1, 2
            """
        )
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
    shape: DemoShape,
    seed: int | None,
    progress: Callable[[int], Any],
    commit_each_batch: bool,
) -> None:
    """One loader: its own temporary tables, one transaction per batch unless told otherwise."""
    draws = _setup(session, shape, seed)
    for size in sizes:
        _batch(session, size, draws)
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
    shape: DemoShape,
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
        _load(session, sizes, shape, seed, report, commit_each_batch=True)
        session.execute(text("ANALYZE pipeline_runs"))
        session.execute(text("ANALYZE run_annotations"))
        session.commit()
        return
    with bind.connect() as connection, Session(bind=connection) as own:
        if _claim_empty_tables(own):
            rebuild = _drop_secondary_structures(own)
            _load(own, sizes, shape, seed, report, commit_each_batch=False)
            announce("Building indexes")
            own.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            for statement in rebuild:
                own.execute(text(statement))
            own.commit()
        else:
            own.rollback()
            _load(own, sizes, shape, seed, report, commit_each_batch=True)
    # VACUUM sets the visibility map, so "my runs" stats are index-only scans
    # from the start instead of after autovacuum's first pass. It outlasts the
    # app's statement timeout from about ten million runs on.
    announce("Vacuuming")
    with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("SET statement_timeout = 0"))
        for table in TABLES:
            connection.execute(text(f"VACUUM (ANALYZE) {table}"))
