"""Statements timed one by one, and their plans as PostgreSQL chose and costed them."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.dialects import postgresql

_SCAN = re.compile(
    r"((?:Parallel )?(?:Seq Scan|Index Scan|Index Only Scan|Bitmap Index Scan|Bitmap Heap Scan)"
    r"(?: Backward)?(?: using \w+)?(?: on \w+)?)"
)


def timed(
    connection: Connection, statement: Executable, params: Mapping[str, Any] | None = None
) -> tuple[float, Sequence[Any]]:
    """Seconds `statement` took, all rows fetched, and its rows; its transaction rolled back."""
    started = time.perf_counter()
    rows = connection.execute(statement, params).all()
    elapsed = time.perf_counter() - started
    connection.rollback()
    return elapsed, rows


def literal_sql(statement: Any) -> str:
    """A SQLAlchemy statement as PostgreSQL text with its parameters inlined, for EXPLAIN."""
    dialect = postgresql.psycopg.dialect(paramstyle="named")
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _driver_rows(connection: Connection, sql: str, setting: str | None) -> list[Any]:
    """`sql` on the driver's connection, after `SET LOCAL setting`, then rolled back.

    The rollback is the driver's: SQLAlchemy began nothing, and SET LOCAL must not leak.
    """
    raw: Any = connection.connection.driver_connection
    if setting:
        raw.execute(f"SET LOCAL {setting}")
    rows = raw.execute(sql).fetchall()
    raw.rollback()
    return list(rows)


def explain(connection: Connection, sql: str, setting: str | None = None) -> str:
    """`EXPLAIN (ANALYZE, BUFFERS)` of `sql`: the plan run, with its timings."""
    rows = _driver_rows(connection, f"EXPLAIN (ANALYZE, BUFFERS) {sql}", setting)
    return "\n".join(row[0] for row in rows)


def estimated_cost(connection: Connection, sql: str, setting: str) -> float:
    """The planner's total cost for `sql` with one kind of scan disabled."""
    plan = _driver_rows(connection, f"EXPLAIN (FORMAT JSON) {sql}", setting)[0][0]
    return float(plan[0]["Plan"]["Total Cost"])


def plan_summary(plan: str) -> str:
    """The scans of a plan, each once, in order: `Index Only Scan using … on …; …`."""
    seen: list[str] = []
    for match in _SCAN.findall(plan):
        if match not in seen:
            seen.append(match)
    return "; ".join(seen)
