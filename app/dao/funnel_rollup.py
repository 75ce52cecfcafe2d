"""The funnel rollup's write side: one read and one upsert, in the completion's transaction.

Kept small and in plain SQL text (``:named`` parameters, no dialect syntax) so that it can
be carried into another write path by hand. The rule itself is the pure
``app.services.funnel.funnel_rollup_keys``; this module only feeds it and stores its keys:

1. ``EARLIER_COMPLETIONS``: the user's completions (under the progress-row lock, so no
   concurrent completion of this user can be missing from it);
2. ``funnel_rollup_keys(earlier, step, completed_at)``: the rows to add 1 to, or None;
3. ``ADD_TO_FUNNEL_ROLLUP``, executed once per key, in the order given (smallest span
   first, so concurrent writers take the row locks in one order and never deadlock).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.services.funnel import funnel_rollup_keys
from models import FunnelCohortRollup
from models.types import UTCDateTime


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


funnel_rollups = _table(FunnelCohortRollup)  # for the read side (app.dao.analytics)

EARLIER_COMPLETIONS = text(
    "SELECT step, completed_at FROM step_completions WHERE user_id = :user_id"
).columns(completed_at=UTCDateTime())

ADD_TO_FUNNEL_ROLLUP = text(
    "INSERT INTO funnel_cohort_rollups "
    "(span_hours, cohort_start, step, days_to_reach, gap_bucket, shard, users) "
    "VALUES (:span_hours, :cohort_start, :step, :days_to_reach, :gap_bucket, :shard, 1) "
    "ON CONFLICT (span_hours, cohort_start, step, days_to_reach, gap_bucket, shard) "
    "DO UPDATE SET users = funnel_cohort_rollups.users + 1"
).bindparams(bindparam("cohort_start", type_=UTCDateTime()))


async def count_completion_in_funnel(
    conn: AsyncConnection, *, user_id: str, step: int, completed_at: datetime
) -> None:
    """Add a just-inserted completion to the funnel rollup (same transaction)."""
    rows = await conn.execute(EARLIER_COMPLETIONS, {"user_id": user_id})
    earlier = {r.step: r.completed_at for r in rows if r.step < step}
    keys = funnel_rollup_keys(earlier, step, completed_at)
    if keys:
        await conn.execute(
            ADD_TO_FUNNEL_ROLLUP,
            [
                {
                    "span_hours": k.span_hours,
                    "cohort_start": k.cohort_start,
                    "step": k.step,
                    "days_to_reach": k.days_to_reach,
                    "gap_bucket": k.gap_bucket,
                    "shard": k.shard,
                }
                for k in keys
            ],
        )
