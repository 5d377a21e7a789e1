"""The created_by index covers status: "my runs" stats become index-only scans.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEX = "ix_pipeline_runs_created_by_created_at"
COLUMNS = ["created_by", "created_at", "id"]


def upgrade():
    op.drop_index(INDEX, table_name="pipeline_runs")
    op.create_index(INDEX, "pipeline_runs", COLUMNS, postgresql_include=["status"])


def downgrade():
    op.drop_index(INDEX, table_name="pipeline_runs")
    op.create_index(INDEX, "pipeline_runs", COLUMNS)
