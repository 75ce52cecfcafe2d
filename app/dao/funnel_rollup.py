"""The funnel rollup's write side, in the completion's transaction (a script piece).

The rule itself is the pure ``app.services.funnel.funnel_rollup_keys``; this module only
feeds it and stores its keys:

1. ``EARLIER_COMPLETIONS``: the user's earlier completions (read under the progress-row
   lock, so no concurrent completion of this user can be missing from it; step 1 needs
   none, so sign-ups skip the read);
2. ``funnel_rollup_keys(earlier, step, completed_at)``: the rows to add 1 to, or None;
3. one multi-row upsert adding 1 to each, rows in the order given (smallest span first,
   so concurrent writers take the row locks in one order and never deadlock).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from app.dao.sql import Fetch, Script, Statement
from app.services.funnel import funnel_rollup_keys

EARLIER_COMPLETIONS = Statement.of(
    "SELECT step, completed_at FROM step_completions WHERE user_id = :user_id AND step < :step"
)
_COLUMNS = "span_hours, cohort_start, step, days_to_reach, gap_bucket, shard"


@cache
def add_to_funnel_rollup(rows: int) -> Statement:
    """``INSERT .. VALUES (..), (..) ON CONFLICT DO UPDATE users = users + 1`` for n rows.

    The rows of one completion differ only in their span and block start, so those are
    the only per-row parameters (18 values for 7 rows, not 42: binding is per value)."""
    values = ", ".join(
        f"(:span_{i}, :start_{i}, :step, :days_to_reach, :gap_bucket, :shard, 1)"
        for i in range(rows)
    )
    return Statement.of(
        f"INSERT INTO funnel_cohort_rollups ({_COLUMNS}, users) VALUES {values} "  # noqa: S608 - fixed names
        f"ON CONFLICT ({_COLUMNS}) DO UPDATE SET users = funnel_cohort_rollups.users + 1"
    )


def count_completion_in_funnel(*, user_id: str, step: int, completed_at: datetime) -> Script[None]:
    """Add a just-inserted completion to the funnel rollup (same transaction)."""
    earlier: dict[int, datetime] = {}
    if step > 1:
        rows = yield EARLIER_COMPLETIONS(Fetch.ALL, user_id=user_id, step=step)
        earlier = {earlier_step: _utc(at) for earlier_step, at in rows}
    keys = funnel_rollup_keys(earlier, step, completed_at)
    if not keys:
        return
    first = keys[0]  # one completion's keys share all but span and start (a unit test checks)
    params: dict[str, Any] = {
        "step": first.step,
        "days_to_reach": first.days_to_reach,
        "gap_bucket": first.gap_bucket,
        "shard": first.shard,
    }
    for i, key in enumerate(keys):
        params[f"span_{i}"] = key.span_hours
        params[f"start_{i}"] = key.cohort_start
    yield add_to_funnel_rollup(len(keys))(**params)


def _utc(value: datetime | str) -> datetime:
    """asyncpg returns aware datetimes; SQLite the naive UTC text SQLAlchemy stores."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
