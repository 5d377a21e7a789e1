"""The (key, value) annotation index carries run_id: annotation filters read no heap.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEX = "ix_run_annotations_key_value"


def upgrade():
    op.drop_index(INDEX, table_name="run_annotations")
    op.create_index(INDEX, "run_annotations", ["key", "value", "run_id"])


def downgrade():
    op.drop_index(INDEX, table_name="run_annotations")
    op.create_index(INDEX, "run_annotations", ["key", "value"])
