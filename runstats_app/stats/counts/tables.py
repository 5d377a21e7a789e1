"""The maintained counts' tables: changes as they happen, and the counts they fold into.

Writers never update a counter: the database's triggers (migration 0004) append
one row per change to `run_count_deltas`, in the writing transaction, whoever
writes (this service, an older version of it, SQL). One leased folder moves
those rows into the rollups, each keyed by a grain (hour, day, month, all
time), its bucket, and the columns it is per (creator and/or annotation),
always per name (distinct pipelines) and status. A reader sums the rollup and
the unfolded deltas in one statement, so it sees one snapshot of both.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)

from ...models import Base

metadata = Base.metadata

count_state = Table(
    "run_count_state",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("tracking", Boolean, nullable=False),
    Column("ready", Boolean, nullable=False),
    Column("filled_through", Text, nullable=False, server_default=text("''")),
    CheckConstraint("id = 1", name="single_row"),
    comment="Whether changes are recorded (tracking), the counts exact (ready), or how far "
    "a rebuild has counted run ids.",
)

untracked_keys = Table(
    "run_count_untracked_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    comment="Annotation keys left out of the counts (values nearly unique, e.g. a commit hash).",
)

deltas = Table(
    "run_count_deltas",
    metadata,
    Column("run_id", String(26), nullable=False),
    Column("hour", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255)),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("key", String(255)),
    Column("value", String(255)),
    Column("runs", Integer, nullable=False),
    comment="Changes not folded yet: +1/-1 per run (key NULL) and per tracked annotation.",
)


@dataclass(frozen=True)
class Rollup:
    """One folded count table: per grain, bucket, its own columns, name and status."""

    table: Table
    by_creator: bool
    by_annotation: bool

    @property
    def columns(self) -> tuple[str, ...]:
        per = ("key", "value") if self.by_annotation else ()
        return (*per, *(("created_by",) if self.by_creator else ()), "name", "status")


def _rollup(name: str, by_creator: bool, by_annotation: bool) -> Rollup:
    """Per creator means per known creator: a creator condition never matches a null one."""
    per: list[Column[str]] = []
    if by_annotation:
        per.append(Column("key", String(255), primary_key=True))
        per.append(Column("value", String(255), primary_key=True))
    if by_creator:
        per.append(Column("created_by", String(255), primary_key=True))
    table = Table(
        name,
        metadata,
        *per,
        Column("grain", SmallInteger, primary_key=True),
        Column("bucket", DateTime(timezone=True), primary_key=True),
        Column("name", String(255), primary_key=True),
        Column("status", String(16), primary_key=True),
        Column("runs", Integer, nullable=False),
    )
    return Rollup(table, by_creator, by_annotation)


BY_NAME = _rollup("run_counts", by_creator=False, by_annotation=False)
BY_CREATOR = _rollup("run_counts_by_creator", by_creator=True, by_annotation=False)
BY_ANNOTATION = _rollup("run_counts_by_annotation", by_creator=False, by_annotation=True)
BY_ANNOTATION_CREATOR = _rollup(
    "run_counts_by_annotation_creator", by_creator=True, by_annotation=True
)
ROLLUPS = (BY_NAME, BY_CREATOR, BY_ANNOTATION, BY_ANNOTATION_CREATOR)


def rollup_for(by_creator: bool, by_annotation: bool) -> Rollup:
    """The smallest rollup with the columns a query constrains."""
    return next(
        r for r in ROLLUPS if (r.by_creator, r.by_annotation) == (by_creator, by_annotation)
    )
