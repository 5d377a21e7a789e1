"""Maintained counts: changes appended by triggers, folded into per-hour/day/month/all rollups.

An empty database starts with exact (empty) counts. One that has runs starts
without them (the stats scan) until `flask stats rebuild` fills them online:
a migration is one transaction and must not count millions of runs. Triggers
exist on PostgreSQL only; SQLite keeps the (unused) tables and always scans.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ROLLUPS = {
    "run_counts": ["grain", "bucket", "name_id", "status"],
    "run_counts_by_creator": ["creator_id", "grain", "bucket", "name_id", "status"],
    "run_counts_by_label": ["label_id", "grain", "bucket", "creator_id", "name_id", "status"],
    "run_counts_timeline": ["grain", "bucket", "status"],
    "run_counts_timeline_by_creator": ["creator_id", "grain", "bucket", "status"],
    "run_counts_timeline_by_label": ["label_id", "grain", "bucket", "status"],
}
# Each rollup is partitioned by grain (0 hour, 1 day, 2 month, 3 all time): a query for
# one grain reads that partition alone, however many hourly counters there are.
GRAINS = {"hour": 0, "day": 1, "month": 2, "all": 3}
ROLLUP_GRAINS = {
    "run_counts": ["hour", "day", "month", "all"],
    "run_counts_by_creator": ["day", "month", "all"],
    "run_counts_by_label": ["day", "month", "all"],
    "run_counts_timeline": ["hour", "day"],
    "run_counts_timeline_by_creator": ["hour", "day"],
    "run_counts_timeline_by_label": ["hour", "day"],
}
SMALL = {"grain", "status"}

FUNCTIONS = r"""
CREATE FUNCTION run_counts_hour(moment timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT date_trunc('hour', moment AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' $$;

-- Each trigger is one INSERT into run_count_deltas that reads run_count_state in the
-- same statement: a rebuild's reset (flask stats rebuild) locks that table to let
-- in-flight writers finish, and every writer after it sees the new state.

CREATE FUNCTION run_counts_runs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO run_count_deltas (run_id, hour, created_by, name, status, key, value, runs)
  SELECT n.id, run_counts_hour(n.created_at), n.created_by, n.name, n.status, NULL, NULL, 1
  FROM new_runs n, run_count_state s
  WHERE s.id = 1 AND s.tracking;
  RETURN NULL;
END $$;

CREATE FUNCTION run_counts_runs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO run_count_deltas (run_id, hour, created_by, name, status, key, value, runs)
  WITH changed AS (
    SELECT o.id AS old_id, o.created_at AS old_at, o.created_by AS old_by,
           o.name AS old_name, o.status AS old_status,
           n.id AS new_id, n.created_at AS new_at, n.created_by AS new_by,
           n.name AS new_name, n.status AS new_status
    FROM old_runs o FULL JOIN new_runs n ON n.id = o.id
    WHERE o.id IS NULL OR n.id IS NULL
       OR (o.created_at, o.created_by, o.name, o.status)
          IS DISTINCT FROM (n.created_at, n.created_by, n.name, n.status)
  ), tracked AS (
    SELECT c.* FROM changed c, run_count_state s WHERE s.id = 1 AND s.tracking
  )
  SELECT old_id, run_counts_hour(old_at), old_by, old_name, old_status, NULL, NULL, -1
  FROM tracked WHERE old_id IS NOT NULL
  UNION ALL
  SELECT new_id, run_counts_hour(new_at), new_by, new_name, new_status, NULL, NULL, 1
  FROM tracked WHERE new_id IS NOT NULL
  UNION ALL
  SELECT c.old_id, run_counts_hour(c.old_at), c.old_by, c.old_name, c.old_status,
         a.key, a.value, -1
  FROM tracked c JOIN run_annotations a ON a.run_id = c.old_id
  WHERE c.new_id = c.old_id
    AND NOT EXISTS (SELECT 1 FROM run_count_untracked_keys u WHERE u.key = a.key)
  UNION ALL
  SELECT c.new_id, run_counts_hour(c.new_at), c.new_by, c.new_name, c.new_status,
         a.key, a.value, 1
  FROM tracked c JOIN run_annotations a ON a.run_id = c.new_id
  WHERE c.new_id = c.old_id
    AND NOT EXISTS (SELECT 1 FROM run_count_untracked_keys u WHERE u.key = a.key);
  RETURN NULL;
END $$;

-- BEFORE, per row: a deleted run's annotations are still there to be counted down
-- (the cascade removes them afterwards, when their run is gone).
CREATE FUNCTION run_counts_run_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO run_count_deltas (run_id, hour, created_by, name, status, key, value, runs)
  SELECT OLD.id, run_counts_hour(OLD.created_at), OLD.created_by, OLD.name, OLD.status,
         k.key, k.value, -1
  FROM (SELECT NULL::varchar AS key, NULL::varchar AS value
        UNION ALL
        SELECT a.key, a.value FROM run_annotations a
        WHERE a.run_id = OLD.id
          AND NOT EXISTS (SELECT 1 FROM run_count_untracked_keys u WHERE u.key = a.key)) k,
       run_count_state s
  WHERE s.id = 1 AND s.tracking;
  RETURN OLD;
END $$;

CREATE FUNCTION run_counts_annotations_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO run_count_deltas (run_id, hour, created_by, name, status, key, value, runs)
  SELECT r.id, run_counts_hour(r.created_at), r.created_by, r.name, r.status, a.key, a.value, 1
  FROM new_annotations a JOIN pipeline_runs r ON r.id = a.run_id, run_count_state s
  WHERE s.id = 1 AND s.tracking
    AND NOT EXISTS (SELECT 1 FROM run_count_untracked_keys u WHERE u.key = a.key);
  RETURN NULL;
END $$;

CREATE FUNCTION run_counts_annotations_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO run_count_deltas (run_id, hour, created_by, name, status, key, value, runs)
  WITH gone AS (
    SELECT run_id, key, value FROM old_annotations
    EXCEPT ALL SELECT run_id, key, value FROM new_annotations
  ), came AS (
    SELECT run_id, key, value FROM new_annotations
    EXCEPT ALL SELECT run_id, key, value FROM old_annotations
  ), moves AS (
    SELECT run_id, key, value, -1 AS runs FROM gone
    UNION ALL SELECT run_id, key, value, 1 FROM came
  )
  SELECT r.id, run_counts_hour(r.created_at), r.created_by, r.name, r.status,
         m.key, m.value, m.runs
  FROM moves m JOIN pipeline_runs r ON r.id = m.run_id, run_count_state s
  WHERE s.id = 1 AND s.tracking
    AND NOT EXISTS (SELECT 1 FROM run_count_untracked_keys u WHERE u.key = m.key);
  RETURN NULL;
END $$;

-- Annotations removed with their run (the cascade) find no run here: the run's
-- own delete trigger counted them down already.
CREATE FUNCTION run_counts_annotations_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO run_count_deltas (run_id, hour, created_by, name, status, key, value, runs)
  SELECT r.id, run_counts_hour(r.created_at), r.created_by, r.name, r.status, a.key, a.value, -1
  FROM old_annotations a JOIN pipeline_runs r ON r.id = a.run_id, run_count_state s
  WHERE s.id = 1 AND s.tracking
    AND NOT EXISTS (SELECT 1 FROM run_count_untracked_keys u WHERE u.key = a.key);
  RETURN NULL;
END $$;

CREATE FUNCTION run_counts_runs_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE run_count_deltas, run_counts, run_counts_by_creator, run_counts_by_label,
           run_counts_timeline, run_counts_timeline_by_creator, run_counts_timeline_by_label;
  RETURN NULL;
END $$;

CREATE FUNCTION run_counts_annotations_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM run_count_deltas WHERE key IS NOT NULL;
  TRUNCATE run_counts_by_label, run_counts_timeline_by_label;
  RETURN NULL;
END $$;

CREATE TRIGGER run_counts_runs_inserted AFTER INSERT ON pipeline_runs
  REFERENCING NEW TABLE AS new_runs
  FOR EACH STATEMENT EXECUTE FUNCTION run_counts_runs_inserted();
CREATE TRIGGER run_counts_runs_updated AFTER UPDATE ON pipeline_runs
  REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs
  FOR EACH STATEMENT EXECUTE FUNCTION run_counts_runs_updated();
CREATE TRIGGER run_counts_run_deleted BEFORE DELETE ON pipeline_runs
  FOR EACH ROW EXECUTE FUNCTION run_counts_run_deleted();
CREATE TRIGGER run_counts_runs_truncated AFTER TRUNCATE ON pipeline_runs
  FOR EACH STATEMENT EXECUTE FUNCTION run_counts_runs_truncated();
CREATE TRIGGER run_counts_annotations_inserted AFTER INSERT ON run_annotations
  REFERENCING NEW TABLE AS new_annotations
  FOR EACH STATEMENT EXECUTE FUNCTION run_counts_annotations_inserted();
CREATE TRIGGER run_counts_annotations_updated AFTER UPDATE ON run_annotations
  REFERENCING OLD TABLE AS old_annotations NEW TABLE AS new_annotations
  FOR EACH STATEMENT EXECUTE FUNCTION run_counts_annotations_updated();
CREATE TRIGGER run_counts_annotations_deleted AFTER DELETE ON run_annotations
  REFERENCING OLD TABLE AS old_annotations
  FOR EACH STATEMENT EXECUTE FUNCTION run_counts_annotations_deleted();
CREATE TRIGGER run_counts_annotations_truncated AFTER TRUNCATE ON run_annotations
  FOR EACH STATEMENT EXECUTE FUNCTION run_counts_annotations_truncated();
"""

DROP_FUNCTIONS = """
DROP TRIGGER IF EXISTS run_counts_annotations_truncated ON run_annotations;
DROP TRIGGER IF EXISTS run_counts_annotations_deleted ON run_annotations;
DROP TRIGGER IF EXISTS run_counts_annotations_updated ON run_annotations;
DROP TRIGGER IF EXISTS run_counts_annotations_inserted ON run_annotations;
DROP TRIGGER IF EXISTS run_counts_runs_truncated ON pipeline_runs;
DROP TRIGGER IF EXISTS run_counts_run_deleted ON pipeline_runs;
DROP TRIGGER IF EXISTS run_counts_runs_updated ON pipeline_runs;
DROP TRIGGER IF EXISTS run_counts_runs_inserted ON pipeline_runs;
DROP FUNCTION IF EXISTS run_counts_annotations_truncated();
DROP FUNCTION IF EXISTS run_counts_runs_truncated();
DROP FUNCTION IF EXISTS run_counts_annotations_deleted();
DROP FUNCTION IF EXISTS run_counts_annotations_updated();
DROP FUNCTION IF EXISTS run_counts_annotations_inserted();
DROP FUNCTION IF EXISTS run_counts_run_deleted();
DROP FUNCTION IF EXISTS run_counts_runs_updated();
DROP FUNCTION IF EXISTS run_counts_runs_inserted();
DROP FUNCTION IF EXISTS run_counts_hour(timestamptz);
"""


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    op.create_table(
        "run_count_state",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("tracking", sa.Boolean(), nullable=False),
        sa.Column("ready", sa.Boolean(), nullable=False),
        sa.Column("filled_through", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_run_count_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_count_state")),
        comment="Whether changes are recorded (tracking), the counts exact (ready), or how far "
        "a rebuild has counted run ids.",
    )
    op.create_table(
        "run_count_untracked_keys",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_run_count_untracked_keys")),
        comment="Annotation keys left out of the counts (values nearly unique, e.g. a commit hash).",
    )
    op.create_table(
        "run_count_deltas",
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=True),
        sa.Column("value", sa.String(length=255), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        comment="Changes not folded yet: +1/-1 per run (key NULL) and per tracked annotation.",
    )
    for table, column in (("names", "name"), ("creators", "created_by")):
        op.create_table(
            f"run_count_{table}",
            sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
            sa.Column(column, sa.String(length=255), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_run_count_{table}")),
            sa.UniqueConstraint(column, name=op.f(f"uq_run_count_{table}_{column}")),
        )
    op.create_table(
        "run_count_labels",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_count_labels")),
        sa.UniqueConstraint("key", "value", name=op.f("uq_run_count_labels_key")),
    )
    for table, keys in ROLLUPS.items():
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
            for grain in ROLLUP_GRAINS[table]:
                op.execute(
                    f"CREATE TABLE {table}_{grain} PARTITION OF {table}"
                    f" FOR VALUES IN ({GRAINS[grain]})"
                )
    empty = op.get_bind().execute(sa.text("SELECT NOT EXISTS (SELECT 1 FROM pipeline_runs)"))
    ready = _is_postgresql() and bool(empty.scalar())
    op.execute(
        sa.text(
            "INSERT INTO run_count_state (id, tracking, ready, filled_through)"
            " VALUES (1, :ready, :ready, '')"
        ).bindparams(ready=ready)
    )
    if _is_postgresql():
        op.execute(FUNCTIONS)


def downgrade():
    if _is_postgresql():
        op.execute(DROP_FUNCTIONS)
    for table in reversed(list(ROLLUPS)):
        op.drop_table(table)
    for table in ("run_count_labels", "run_count_creators", "run_count_names"):
        op.drop_table(table)
    op.drop_table("run_count_deltas")
    op.drop_table("run_count_untracked_keys")
    op.drop_table("run_count_state")
