"""Create the onboarding and KPI event tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", JSON, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "operation", "key"),
    )
    op.create_table(
        "onboarding_progress",
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("completed_steps", JSON, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "step_completions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("completed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "step", name="uq_step_completions_user_step"),
    )
    op.create_table(
        "analytics_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("completion_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("error_type", sa.String(128), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.Column("resolved_event_id", sa.Uuid(as_uuid=False), nullable=True),
        sa.ForeignKeyConstraint(["completion_id"], ["step_completions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("completion_id"),
    )
    op.create_table(
        "kpi_events",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("completion_id", sa.Integer(), nullable=False),
        sa.Column("kpi_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["completion_id"], ["step_completions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("completion_id"),
    )
    op.create_index("ix_kpi_events_kpi_id_occurred_at", "kpi_events", ["kpi_id", "occurred_at"])
    op.create_index("ix_kpi_events_occurred_at_id", "kpi_events", ["occurred_at", "id"])
    op.create_index("ix_kpi_events_user_id", "kpi_events", ["user_id"])


def downgrade() -> None:
    op.drop_table("kpi_events")
    op.drop_table("analytics_failures")
    op.drop_table("step_completions")
    op.drop_table("onboarding_progress")
    op.drop_table("idempotency_keys")
