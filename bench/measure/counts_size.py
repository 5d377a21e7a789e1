"""The maintained counts' size beside the tables they summarise, indexes and TOAST included."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

from ..context import Goal
from ..harness.formatting import table

GOAL = 0.25
RUNS_TABLES = ("pipeline_runs", "run_annotations", "run_status_history")
SIZES = text(
    """
    SELECT c.relname, pg_total_relation_size(c.oid)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind = 'r'
      AND (c.relname LIKE 'run\\_count%' OR c.relname = ANY(:runs))
    ORDER BY 2 DESC
    """
)
"""Plain tables only: each partition of a rollup is one, its parent holds nothing."""


@dataclass(frozen=True)
class CountsSize:
    counts: dict[str, int]
    runs: dict[str, int]

    @staticmethod
    def total(sizes: dict[str, int]) -> int:
        return sum(sizes.values())

    @property
    def ratio(self) -> float:
        return self.total(self.counts) / self.total(self.runs)

    def goal(self) -> Goal:
        return Goal(
            "size of the counts / runs, annotations and history",
            f"{_mb(self.total(self.counts))} / {_mb(self.total(self.runs))} = {self.ratio:.3f}",
            f"≤ {GOAL}",
            self.ratio <= GOAL,
        )

    def describe(self) -> str:
        rows = [[name, _mb(size)] for name, size in self.runs.items()]
        rows += [[name, _mb(size)] for name, size in self.counts.items()]
        return (
            f"Size (pg_total_relation_size: tables, indexes, TOAST): the counts take "
            f"**{_mb(sum(self.counts.values()))}**, the runs, annotations and history "
            f"**{_mb(sum(self.runs.values()))}**: **{self.ratio:.3f}** of them "
            f"(goal ≤ {GOAL}).\n\n" + table(["table", "size"], rows) + "\n"
        )


def counts_size(engine: Engine) -> CountsSize:
    with engine.connect() as connection:
        rows = connection.execute(SIZES, {"runs": list(RUNS_TABLES)}).all()
    return CountsSize(
        counts={name: int(size) for name, size in rows if name not in RUNS_TABLES},
        runs={name: int(size) for name, size in rows if name in RUNS_TABLES},
    )


def _mb(size: int) -> str:
    return f"{size / 2**20:,.0f} MB"
