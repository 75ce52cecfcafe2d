"""Analytics: per-slot KPI event rollups, one event per (KPI, user), funnel index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kpi_event_rollups",
        sa.Column("kpi_id", sa.String(128), nullable=False),
        sa.Column("slot_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kpi_id", "slot_start", "shard"),
    )
    # Backfill from the events recorded before this revision (15-minute UTC slots).
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        slot = "date_bin('15 minutes', occurred_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
    else:
        slot = (
            "strftime('%Y-%m-%d %H:', occurred_at) || "
            "printf('%02d:00.000000', (CAST(strftime('%M', occurred_at) AS INTEGER) / 15) * 15)"
        )
    op.execute(
        f"INSERT INTO kpi_event_rollups (kpi_id, slot_start, shard, events) "  # noqa: S608
        f"SELECT kpi_id, {slot}, 0, count(*) FROM kpi_events GROUP BY kpi_id, {slot}"
    )
    with op.batch_alter_table("kpi_events") as batch:
        batch.create_unique_constraint("uq_kpi_events_kpi_user", ["kpi_id", "user_id"])
    op.create_index(
        "ix_step_completions_step_completed_at", "step_completions", ["step", "completed_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_step_completions_step_completed_at", table_name="step_completions")
    with op.batch_alter_table("kpi_events") as batch:
        batch.drop_constraint("uq_kpi_events_kpi_user", type_="unique")
    op.drop_table("kpi_event_rollups")
