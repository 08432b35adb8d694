"""The tables (dispatcher.store.schema), on both backends: times stored and read back as
timezone-aware UTC, and the pending-only ordering index stating the pending statuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy.dialects import postgresql, sqlite

from dispatcher import store
from dispatcher.store.schema import UTCDateTime
from tests.store.rows import attempt_record, new_delivery


def test_datetimes_come_back_timezone_aware_utc(engine) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 3, 1, 14, 30, 15, 250000, tzinfo=plus_two)  # 12:30:15.25 UTC
    naive = datetime(2026, 3, 1, 9, 0, 0)  # naive means UTC
    a, b = new_delivery(), new_delivery()
    store.insert_deliveries(engine, [a], now=local)
    store.insert_deliveries(engine, [b], now=naive)

    got_a = store.get_delivery(engine, a.request_id)
    got_b = store.get_delivery(engine, b.request_id)
    for value in (got_a["created_at"], got_a["updated_at"], got_b["created_at"]):
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
    assert got_a["created_at"] == local
    assert got_a["created_at"].hour == 12 and got_a["created_at"].minute == 30
    assert got_a["created_at"].microsecond == 250000
    assert got_b["created_at"] == naive.replace(tzinfo=UTC)

    # Attempt rows and next_attempt_at too.
    claim = store.claim(engine, a.request_id, "w1", now=local)
    assert claim is not None
    due = datetime(2026, 3, 1, 15, 0, 0, tzinfo=plus_two)
    assert store.record_attempt(
        engine,
        attempt_record(claim, "retry_scheduled", http_status=503, next_attempt_at=due, created_at=local),
        "w1",
    )
    (attempt,) = store.list_attempts(engine, a.request_id)
    for key in ("created_at", "next_attempt_at"):
        assert attempt[key].utcoffset() == timedelta(0)
    assert attempt["next_attempt_at"] == due
    assert attempt["next_attempt_at"].hour == 13
    delivery = store.get_delivery(engine, a.request_id)
    assert delivery["next_attempt_at"] == due
    assert delivery["attempt_started_at"] == local
    assert delivery["attempt_started_at"].utcoffset() == timedelta(0)


def test_the_pending_index_states_the_pending_statuses() -> None:
    from dispatcher.store.schema import ORDERED_PENDING
    from dispatcher.vocabulary import PENDING_STATUSES

    listed = ", ".join(f"'{status}'" for status in PENDING_STATUSES)
    assert ORDERED_PENDING == f"ordering_key IS NOT NULL AND status IN ({listed})"


def test_a_time_is_bound_as_utc_and_read_back_aware_on_each_backend() -> None:
    column = UTCDateTime()
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 3, 1, 14, 30, tzinfo=plus_two)
    utc = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert column.process_bind_param(local, sqlite.dialect()) == utc.replace(tzinfo=None)  # SQLite: naive UTC
    assert column.process_bind_param(local, postgresql.dialect()) == utc
    assert column.process_bind_param(local, postgresql.dialect()).utcoffset() == timedelta(0)
    assert column.process_bind_param(datetime(2026, 3, 1, 12, 30), sqlite.dialect()) == utc.replace(
        tzinfo=None
    )
    assert column.process_bind_param(None, sqlite.dialect()) is None
    back = column.process_result_value(utc.replace(tzinfo=None), sqlite.dialect())
    assert back == utc and back.utcoffset() == timedelta(0)
    assert column.process_result_value(local, postgresql.dialect()).tzinfo == UTC
    assert column.process_result_value(None, postgresql.dialect()) is None
