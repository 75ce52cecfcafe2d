"""Hot-path SQL: one text, rendered for sqlite3 (:name) and asyncpg ($n)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, Uuid
from sqlalchemy.dialects import sqlite

from app.dao.sql import Fetch, Statement
from models.types import UTCDateTime


def test_parameters_are_numbered_in_order_of_first_use() -> None:
    statement = Statement.of("UPDATE t SET a = :a, b = :b\n   WHERE a = :a AND c = ':c' AND d = :d")
    assert statement.names == ("a", "b", "d")
    assert statement.numbered == "UPDATE t SET a = $1, b = $2 WHERE a = $1 AND c = ':c' AND d = $3"
    assert statement.sql == "UPDATE t SET a = :a, b = :b WHERE a = :a AND c = ':c' AND d = :d"


def test_casts_are_not_parameters() -> None:
    assert Statement.of("SELECT x::text FROM t WHERE y = :y").names == ("y",)


def test_values_are_stored_the_way_sqlalchemy_stores_them_on_sqlite() -> None:
    moment = datetime(2026, 3, 8, 2, 30, tzinfo=timezone(timedelta(hours=-5)))
    event_id = uuid.UUID("0b5e1c3a-1f4e-4d2a-9c7b-2e6f8a9d0c1b")
    query = Statement.of("INSERT INTO t VALUES (:at, :id, :n, :s)")(
        Fetch.NOTHING, at=moment, id=event_id, n=3, s="x"
    )
    assert query.sqlite_params() == {
        "at": "2026-03-08 07:30:00.000000",  # UTC, microseconds always written
        "id": "0b5e1c3a1f4e4d2a9c7b2e6f8a9d0c1b",
        "n": 3,
        "s": "x",
    }
    # exactly what SQLAlchemy writes for the models' column types, which the analytics
    # queries compare and sort as text
    dialect = sqlite.dialect()
    as_stored = UTCDateTime().process_bind_param(moment, dialect)
    stored_time = DateTime().dialect_impl(dialect).bind_processor(dialect)
    stored_uuid = Uuid(as_uuid=False).dialect_impl(dialect).bind_processor(dialect)
    assert stored_time is not None and stored_uuid is not None
    assert query.sqlite_params()["at"] == stored_time(as_stored)
    assert query.sqlite_params()["id"] == stored_uuid(str(event_id))
    assert query.numbered_params() == (moment, event_id, 3, "x")


def test_naive_datetimes_are_refused() -> None:
    query = Statement.of("SELECT :at")(Fetch.ONE, at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        query.sqlite_params()


def test_a_missing_parameter_fails_loudly() -> None:
    query = Statement.of("SELECT :a, :b")(Fetch.ONE, a=1)
    with pytest.raises(KeyError):
        query.sqlite_params()
    with pytest.raises(KeyError):
        query.numbered_params()
