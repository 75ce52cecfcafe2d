"""Flow history: what each step number has meant since it was first served.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

Completions and KPI events store a step number only; this table keeps the number's key and
KPI so that a changed flow file cannot silently give recorded completions another meaning.
It starts empty: the first ``migrate`` or ``serve`` after this revision records the flow it
is given (``app.flow_history``), as no key was stored before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "flow_history",
        sa.Column("step", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("kpi_id", sa.String(128), nullable=True),
        sa.Column("kpi_since", TIMESTAMP, nullable=True),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("step"),
    )


def downgrade() -> None:
    op.drop_table("flow_history")
