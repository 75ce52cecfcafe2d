"""Funnel: users per cohort block, step, days to reach it and gap bucket.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

The backfill replays every completion recorded before this revision through
``app.services.funnel.funnel_rollup_keys``, the same function the write path uses, so the
rollup starts equal to what the server would have written. It reads step_completions in
batches of whole users (keyset on the (user_id, step) unique index) and adds counts with
an upsert, so memory stays bounded on a large table.
"""

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from app.services.funnel import FunnelRollupKey, funnel_rollup_keys
from models.types import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 50_000  # completions read per query
FLUSH = 100_000  # distinct rollup rows held before they are written


def upgrade() -> None:
    op.create_table(
        "funnel_cohort_rollups",
        sa.Column("span_hours", sa.Integer(), nullable=False),
        sa.Column("cohort_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("days_to_reach", sa.Integer(), nullable=False),
        sa.Column("gap_bucket", sa.Integer(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "span_hours", "cohort_start", "step", "days_to_reach", "gap_bucket", "shard"
        ),
        sqlite_with_rowid=False,
    )
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("funnel_cohort_rollups")


_READ = sa.text(
    "SELECT user_id, step, completed_at FROM step_completions "
    "WHERE user_id > :after ORDER BY user_id, step LIMIT :limit"
).columns(completed_at=UTCDateTime())
_ADD = sa.text(
    "INSERT INTO funnel_cohort_rollups "
    "(span_hours, cohort_start, step, days_to_reach, gap_bucket, shard, users) "
    "VALUES (:span_hours, :cohort_start, :step, :days_to_reach, :gap_bucket, :shard, :users) "
    "ON CONFLICT (span_hours, cohort_start, step, days_to_reach, gap_bucket, shard) "
    "DO UPDATE SET users = funnel_cohort_rollups.users + excluded.users"
).bindparams(sa.bindparam("cohort_start", type_=UTCDateTime()))


def _backfill(bind: sa.Connection) -> None:
    counts: Counter[FunnelRollupKey] = Counter()
    after = ""
    while True:
        rows = bind.execute(_READ, {"after": after, "limit": BATCH}).all()
        if not rows:
            break
        full = len(rows) == BATCH
        users: dict[str, dict[int, datetime]] = {}
        for user_id, step, completed_at in rows:
            users.setdefault(user_id, {})[step] = completed_at
        if full and len(users) > 1:  # the last user may go on in the next batch
            del users[rows[-1][0]]
        for steps in users.values():
            for step, completed_at in steps.items():
                counts.update(funnel_rollup_keys(steps, step, completed_at) or ())
        after = next(reversed(users))  # in the database's order (its collation)
        if len(counts) >= FLUSH:
            _flush(bind, counts)
        if not full:
            break
    _flush(bind, counts)


def _flush(bind: sa.Connection, counts: Counter[FunnelRollupKey]) -> None:
    if counts:
        bind.execute(
            _ADD,
            [
                {
                    "span_hours": k.span_hours,
                    "cohort_start": k.cohort_start,
                    "step": k.step,
                    "days_to_reach": k.days_to_reach,
                    "gap_bucket": k.gap_bucket,
                    "shard": k.shard,
                    "users": n,
                }
                for k, n in counts.items()
            ],
        )
    counts.clear()
