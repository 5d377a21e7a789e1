"""Initial schema: runs, annotations, status history, API tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATUSES = "'QUEUED', 'PENDING', 'RUNNING', 'CANCELLING', 'SUCCEEDED', 'FAILED', 'SYSTEM_ERROR', 'CANCELLED', 'SKIPPED'"


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    if _is_postgresql():
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('reader', 'writer', 'admin')", name=op.f("ck_api_tokens_role_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_pipeline_runs_status_known")),
        sa.CheckConstraint("attempt >= 1 AND attempt <= max_attempts", name=op.f("ck_pipeline_runs_attempt_in_range")),
        sa.CheckConstraint("max_attempts BETWEEN 1 AND 10", name=op.f("ck_pipeline_runs_max_attempts_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_runs")),
    )
    op.create_index("ix_pipeline_runs_created_at_id", "pipeline_runs", ["created_at", "id"])
    op.create_index("ix_pipeline_runs_created_by_created_at", "pipeline_runs", ["created_by", "created_at", "id"])
    op.create_index("ix_pipeline_runs_name", "pipeline_runs", ["name"])
    op.create_index("ix_pipeline_runs_status_created_at", "pipeline_runs", ["status", "created_at", "id"])
    op.create_index("ix_pipeline_runs_status_updated_at", "pipeline_runs", ["status_updated_at"])

    op.create_table(
        "run_annotations",
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.id"],
            name=op.f("fk_run_annotations_run_id_pipeline_runs"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_run_annotations")),
    )
    op.create_index("ix_run_annotations_key_value", "run_annotations", ["key", "value"])

    op.create_table(
        "run_status_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds_in_previous_status", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.id"],
            name=op.f("fk_run_status_history_run_id_pipeline_runs"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_status_history")),
    )
    op.create_index("ix_run_status_history_run_id_id", "run_status_history", ["run_id", "id"])

    if _is_postgresql():
        op.create_index(
            "ix_pipeline_runs_name_trgm", "pipeline_runs", ["name"],
            postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"},
        )
        op.create_index(
            "ix_run_annotations_value_trgm", "run_annotations", ["value"],
            postgresql_using="gin", postgresql_ops={"value": "gin_trgm_ops"},
        )


def downgrade():
    op.drop_table("run_status_history")
    op.drop_table("run_annotations")
    op.drop_table("pipeline_runs")
    op.drop_table("api_tokens")
