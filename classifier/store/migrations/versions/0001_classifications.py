"""classifications table

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "classifications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("message_id", sa.String(512), nullable=True),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("sender", sa.String(512), nullable=True),
        sa.Column("customer_id", sa.String(128), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("needs_review", sa.Boolean, nullable=False),
        sa.Column("model_priority", sa.String(16), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("body_purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    )
    op.create_index("ix_classifications_message_id", "classifications", ["message_id"], unique=True)
    op.create_index("ix_classifications_received_at", "classifications", ["received_at"])
    op.create_index("ix_classifications_created_at", "classifications", ["created_at"])
    op.create_index("ix_classifications_priority", "classifications", ["priority"])
    op.create_index("ix_classifications_needs_review", "classifications", ["needs_review"])


def downgrade() -> None:
    op.drop_table("classifications")
