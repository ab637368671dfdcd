"""model_versions, model_registry, model_registry_log and escalations: several machines, one service

The model registry moves into the store, so that a model trained, promoted or rolled back on one machine is what
every machine serves: ``model_versions`` holds each version's manifest entry and the bytes of its files with their
sha256; ``model_registry`` is one row naming the current version and the others (previous, rolled back, rejected)
with a revision every worker compares; ``model_registry_log`` records each change.

``escalations`` records the tickets the escalation job moved to level 2, one per ticket and level (a unique pair),
so two instances that run the job at the same moment escalate a ticket once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("entry", sa.JSON, nullable=False),
        sa.Column("serving", sa.LargeBinary, nullable=True),
        sa.Column("serving_sha256", sa.String(64), nullable=True),
        sa.Column("estimator", sa.LargeBinary, nullable=False),
        sa.Column("estimator_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "model_registry",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("current", sa.String(64), sa.ForeignKey("model_versions.version"), nullable=True),
        sa.Column("previous", sa.JSON, nullable=False),
        sa.Column("rolled_back", sa.JSON, nullable=False),
        sa.Column("rejected", sa.JSON, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "model_registry_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "escalations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("classification_id", sa.String(36), sa.ForeignKey("classifications.id"), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("previous_priority", sa.String(16), nullable=False),
        sa.Column("response_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("solution_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("classification_id", "level", name="uq_escalations_classification_level"),
    )


def downgrade() -> None:
    op.drop_table("escalations")
    op.drop_table("model_registry_log")
    op.drop_table("model_registry")
    op.drop_table("model_versions")
