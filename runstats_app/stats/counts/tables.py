"""The maintained counts' tables: changes as they happen, and the counts they fold into.

Writers never update a counter: the database's triggers (migration 0004) append
one row per change to `run_count_deltas`, in the writing transaction, whoever
writes (this service, an older version of it, SQL). One leased folder moves
those rows into the rollups. A reader sums a rollup and the unfolded deltas in
one statement, so it sees one snapshot of both.

Rollups are compact, since there is a counter for about every run at the
finest grain: names, creators and annotation (key, value) labels are numbered
in dictionaries (by the folder), statuses are codes, and a bucket is the
number of its hour, day or month since 1970 (0 for all time).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from ...models import PARTITIONS, Base
from ...statuses import STATUS_NAMES
from .timeline import Grain

metadata = Base.metadata

STATUS_CODES = {name: code for code, name in enumerate(STATUS_NAMES)}
NO_CREATOR = 0
"""The creator id of runs without one (the label rollup counts them too)."""

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


def _substring_index(name: str, column: str) -> Index:
    """A trigram index: a read looks up the names or values containing a substring."""
    index = Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})
    return index.ddl_if(dialect="postgresql")


names = Table(
    "run_count_names",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    _substring_index("ix_run_count_names_name_trgm", "name"),
)
creators = Table(
    "run_count_creators",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("created_by", String(255), nullable=False, unique=True),
)
labels = Table(
    "run_count_labels",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("key", String(255), nullable=False),
    Column("value", String(255), nullable=False),
    UniqueConstraint("key", "value"),
    _substring_index("ix_run_count_labels_value_trgm", "value"),
)

ALL_GRAINS = (Grain.HOUR, Grain.DAY, Grain.MONTH, Grain.ALL)
FROM_DAYS = (Grain.DAY, Grain.MONTH, Grain.ALL)


@dataclass(frozen=True)
class Rollup:
    """One folded count table, per grain and bucket, and per what its flags say."""

    table: Table
    by_label: bool
    by_creator: bool
    by_name: bool
    grains: tuple[Grain, ...]
    by_status: bool = True

    @property
    def finest(self) -> Grain:
        return self.grains[0]

    def partition(self, grain: Grain) -> str:
        """The table of one grain: a query for that grain reads it alone (PostgreSQL)."""
        return f"{self.table.name}_{grain.name.lower()}"

    @property
    def keys(self) -> tuple[str, ...]:
        """Its primary key, in index order (what readers constrain first, first)."""
        leading = ("label_id",) if self.by_label else ("creator_id",) if self.by_creator else ()
        trailing = ("creator_id",) if self.by_label and self.by_creator else ()
        named = ("name_id",) if self.by_name else ()
        status = ("status",) if self.by_status else ()
        return (*leading, "grain", "bucket", *trailing, *named, *status)


def _rollup(
    name: str,
    *,
    by_label: bool,
    by_creator: bool,
    by_name: bool,
    grains: tuple[Grain, ...],
    by_status: bool = True,
) -> Rollup:
    spec = Rollup(
        Table(name, metadata, postgresql_partition_by="LIST (grain)"),
        by_label,
        by_creator,
        by_name,
        grains,
        by_status,
    )
    metadata.info.setdefault(PARTITIONS, set()).update(spec.partition(g) for g in grains)
    types = {"grain": SmallInteger, "status": SmallInteger}
    for key in spec.keys:
        spec.table.append_column(Column(key, types.get(key, Integer), primary_key=True))
    spec.table.append_column(Column("runs", Integer, nullable=False))
    return spec


# Per name, for the stats (distinct pipelines) and name filters. Only the one without
# creator or label keeps hours: the others' tails (a counter for nearly every run) would
# outgrow the budget, so their ranges read the runs of a partial day at each edge.
RUNS = _rollup("run_counts", by_label=False, by_creator=False, by_name=True, grains=ALL_GRAINS)
BY_CREATOR = _rollup(
    "run_counts_by_creator", by_label=False, by_creator=True, by_name=True, grains=FROM_DAYS
)
BY_LABEL = _rollup(
    "run_counts_by_label", by_label=True, by_creator=True, by_name=True, grains=FROM_DAYS
)
# Without names: runs by status, for the stats of a filter on no name, and the history.
TIMELINE = _rollup(
    "run_counts_timeline",
    by_label=False,
    by_creator=False,
    by_name=False,
    grains=ALL_GRAINS,
)
CREATOR_TIMELINE = _rollup(
    "run_counts_timeline_by_creator",
    by_label=False,
    by_creator=True,
    by_name=False,
    grains=ALL_GRAINS,
)
LABEL_TIMELINE = _rollup(
    "run_counts_timeline_by_label",
    by_label=True,
    by_creator=False,
    by_name=False,
    grains=ALL_GRAINS,
)


def _all_time_names(name: str, *, by_label: bool, by_creator: bool) -> Rollup:
    """Per name without statuses, all time only: the distinct pipelines of a filter on no
    status and no created_at range (the homepage's "all", "me", a team). A range reads
    them from the per-name rollups above: day rows without statuses would cost a third
    more space (measured at 1M runs)."""
    return _rollup(
        name,
        by_label=by_label,
        by_creator=by_creator,
        by_name=True,
        grains=(Grain.ALL,),
        by_status=False,
    )


NAMES = _all_time_names("run_counts_names", by_label=False, by_creator=False)
CREATOR_NAMES = _all_time_names("run_counts_names_by_creator", by_label=False, by_creator=True)
LABEL_NAMES = _all_time_names("run_counts_names_by_label", by_label=True, by_creator=False)

ROLLUPS = (
    RUNS,
    BY_CREATOR,
    BY_LABEL,
    TIMELINE,
    CREATOR_TIMELINE,
    LABEL_TIMELINE,
    NAMES,
    CREATOR_NAMES,
    LABEL_NAMES,
)
