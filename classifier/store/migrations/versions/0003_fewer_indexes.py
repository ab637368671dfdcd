"""classifications: drop the priority and needs_review indexes

Two or five distinct values make poor indexes (no query is selective on them alone), and every stored
classification paid two more B-tree writes for them. The review queue orders by ``received_at``, which keeps
its index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_classifications_priority", table_name="classifications")
    op.drop_index("ix_classifications_needs_review", table_name="classifications")


def downgrade() -> None:
    op.create_index("ix_classifications_needs_review", "classifications", ["needs_review"])
    op.create_index("ix_classifications_priority", "classifications", ["priority"])
