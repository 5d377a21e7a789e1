"""Counts without names (all grains) and per name without statuses: small stats reads.

A stats answer summed a counter per name and status (and creator, for a team):
tens of thousands of rows for a Zipf-head creator or team at 10M runs. The
runs by status now come from the name-less timelines, kept at every grain,
and the distinct pipelines of a filter without status or range from all-time
rollups with a row per name.

Like 0004, an empty database starts with exact (empty) counts; one that has
runs stops tracking and answers by scanning until `flask stats rebuild`
fills every rollup online (a migration is one transaction and must not count
millions of runs).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

GRAINS = {"hour": 0, "day": 1, "month": 2, "all": 3}
NEW_ROLLUPS = {
    "run_counts_names": ["grain", "bucket", "name_id"],
    "run_counts_names_by_creator": ["creator_id", "grain", "bucket", "name_id"],
    "run_counts_names_by_label": ["label_id", "grain", "bucket", "name_id"],
}
NEW_ROLLUP_GRAINS = ["all"]
TIMELINES = ("run_counts_timeline", "run_counts_timeline_by_creator", "run_counts_timeline_by_label")
NEW_TIMELINE_GRAINS = ["month", "all"]
SMALL = {"grain", "status"}


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _partition(table: str, grain: str) -> None:
    op.execute(f"CREATE TABLE {table}_{grain} PARTITION OF {table} FOR VALUES IN ({GRAINS[grain]})")


def upgrade():
    for table, keys in NEW_ROLLUPS.items():
        op.create_table(
            table,
            *(
                sa.Column(key, sa.SmallInteger() if key in SMALL else sa.Integer(), nullable=False)
                for key in keys
            ),
            sa.Column("runs", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint(*keys, name=op.f(f"pk_{table}")),
            postgresql_partition_by="LIST (grain)",
        )
        if _is_postgresql():
            for grain in NEW_ROLLUP_GRAINS:
                _partition(table, grain)
    if not _is_postgresql():
        return
    for table in TIMELINES:
        for grain in NEW_TIMELINE_GRAINS:
            _partition(table, grain)
    op.execute(
        "UPDATE run_count_state SET tracking = false, ready = false, filled_through = ''"
        " WHERE EXISTS (SELECT 1 FROM pipeline_runs)"
    )


def downgrade():
    if _is_postgresql():
        for table in TIMELINES:
            for grain in NEW_TIMELINE_GRAINS:
                op.execute(f"DROP TABLE {table}_{grain}")
        op.execute(
            "UPDATE run_count_state SET tracking = false, ready = false, filled_through = ''"
            " WHERE EXISTS (SELECT 1 FROM pipeline_runs)"
        )
    for table in reversed(list(NEW_ROLLUPS)):
        op.drop_table(table)
