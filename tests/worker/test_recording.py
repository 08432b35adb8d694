"""Recording attempts (dispatcher.worker.recording), against the real SQLite and PostgreSQL: a
group in one transaction, a brief outage ridden out by retries, a longer one held in the local
spool, a record the database refuses for good holding back no other, and the spool written back
once the database answers; then the worker terminal's line for each attempt."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from dispatcher import logs, store
from dispatcher.store.sealing import new_key
from dispatcher.times import utcnow
from dispatcher.worker import recording, spool
from tests.store.rows import new_delivery


def claims(runtime, n: int) -> list[store.Claim]:
    rows = [new_delivery() for _ in range(n)]
    store.insert_deliveries(runtime.engine, rows)
    held = store.claim_many(runtime.engine, [r.request_id for r in rows], runtime.worker_name)
    return [held[r.request_id] for r in rows]


def delivered(claim: store.Claim, **fields) -> recording.Entry:
    record = recording.attempt_record(claim, claim.url, "delivered", utcnow(), http_status=200, **fields)
    return record, None


def statuses(runtime, group: list[store.Claim]) -> list[str]:
    return [store.get_delivery(runtime.engine, c.request_id)["status"] for c in group]


def spooled(runtime) -> list[Path]:
    return sorted(Path(runtime.spool_dir).glob("*.json"))


def away(*_args, **_kwargs):
    raise sa.exc.OperationalError(
        "UPDATE webhook_deliveries ...", {}, ConnectionRefusedError("database away")
    )


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(database_url=database_url)


@pytest.fixture
def terminal() -> Iterator[io.StringIO]:
    """The worker's terminal, set up on a buffer, and put back as it was (silent) afterwards."""
    logger = logging.getLogger(logs.TERMINAL_LOGGER_NAME)
    handlers, filters = list(logger.handlers), list(logger.filters)
    stream = io.StringIO()
    logs.setup_terminal([], stream)
    yield stream
    logger.handlers[:], logger.filters[:] = handlers, filters


def test_an_attempt_record_is_made_from_its_claim() -> None:
    claim = store.Claim("r-1", "order_changed", "partner-a", "http://old/", "{}", attempt=2, attempt_limit=5)
    now = utcnow()
    record = recording.attempt_record(claim, "http://new/", "failed", now, http_status=404, duration_ms=7)
    assert record == store.AttemptRecord(
        "r-1", "order_changed", "partner-a", "http://new/", 2, "failed", now, http_status=404, duration_ms=7
    )


def test_a_group_is_written_in_one_call(runtime, monkeypatch) -> None:
    group = claims(runtime, 3)
    calls = []
    write = store.record_attempts
    monkeypatch.setattr(store, "record_attempts", lambda *a: calls.append(len(a[1])) or write(*a))
    recording.record(runtime, [delivered(c) for c in group], runtime.worker_name)
    assert calls == [3] and statuses(runtime, group) == ["delivered"] * 3 and spooled(runtime) == []


def test_a_brief_outage_is_ridden_out_by_retrying(runtime, monkeypatch) -> None:
    group = claims(runtime, 2)
    write, tries = store.record_attempts, []

    def back_on_the_third_try(*args):
        tries.append(1)
        return away() if len(tries) < 3 else write(*args)

    monkeypatch.setattr(store, "record_attempts", back_on_the_third_try)
    recording.record(runtime, [delivered(c) for c in group], runtime.worker_name)
    assert len(tries) == 3 and statuses(runtime, group) == ["delivered"] * 2 and spooled(runtime) == []


def test_a_longer_outage_holds_each_record_in_the_spool_sealed(make_runtime, monkeypatch) -> None:
    runtime = make_runtime(storage_keys=[new_key()])
    group = claims(runtime, 2)
    short = Retrying(retry=retry_if_exception(store.is_transient), stop=stop_after_attempt(2), reraise=True)
    monkeypatch.setattr(recording, "_DB_WRITE", short)  # the real one tries for 20 s
    monkeypatch.setattr(store, "record_attempts", away)
    entries = [delivered(c, response_body="echo Take 5 mg Warfarin") for c in group]
    recording.record(runtime, entries, runtime.worker_name)

    held = spooled(runtime)
    assert len(held) == 2
    assert all(any(c.request_id in p.name for p in held) for c in group)  # one file each
    assert not any(b"Warfarin" in p.read_bytes() for p in held)
    assert statuses(runtime, group) == ["in_flight"] * 2  # nothing sent again: the records wait


def test_a_record_refused_for_good_holds_back_no_other(make_runtime, pg_url: str) -> None:
    runtime = make_runtime(database_url=pg_url)
    good, bad, other = claims(runtime, 3)
    entries = [delivered(good), delivered(bad), delivered(other)]
    entries[1] = (recording.attempt_record(bad, bad.url, "delivered", utcnow(), http_status=2**40), None)
    recording.record(runtime, entries, runtime.worker_name)  # PostgreSQL: integer out of range

    assert statuses(runtime, [good, bad, other]) == ["delivered", "in_flight", "delivered"]
    (held,) = spooled(runtime)
    assert bad.request_id in held.name


def test_the_spool_is_written_back_once_the_database_answers(runtime) -> None:
    group = claims(runtime, 2)
    for claim in group:
        record, reason = delivered(claim)
        spool.hold(runtime.spool_dir, record, runtime.worker_name, reason, runtime.keyring.seal)
    assert recording.flush_spool(runtime) == 2
    assert statuses(runtime, group) == ["delivered"] * 2 and spooled(runtime) == []
    assert recording.flush_spool(runtime) == 0


def test_a_spooled_record_refused_for_good_is_set_aside(make_runtime, pg_url: str) -> None:
    runtime = make_runtime(database_url=pg_url)
    good, bad = claims(runtime, 2)
    spool.hold(runtime.spool_dir, delivered(good)[0], runtime.worker_name, None)
    refused = recording.attempt_record(
        bad, bad.url, "delivered", utcnow() + timedelta(seconds=1), http_status=2**40
    )
    spool.hold(runtime.spool_dir, refused, runtime.worker_name, None)

    assert recording.flush_spool(runtime) == 1
    assert statuses(runtime, [good, bad]) == ["delivered", "in_flight"]
    (aside,) = Path(runtime.spool_dir).glob("*.rejected")
    assert bad.request_id in aside.name and spooled(runtime) == []


def test_the_database_away_keeps_the_spool_for_later(runtime, monkeypatch) -> None:
    (claim,) = claims(runtime, 1)
    spool.hold(runtime.spool_dir, delivered(claim)[0], runtime.worker_name, None)
    monkeypatch.setattr(store, "record_attempt", away)
    assert recording.flush_spool(runtime) == 0
    assert len(spooled(runtime)) == 1
    monkeypatch.undo()
    assert recording.flush_spool(runtime) == 1 and statuses(runtime, [claim]) == ["delivered"]


# --- the worker's terminal line ------------------------------------------------------------

T0 = datetime(2026, 3, 14, 17, 2, 11, tzinfo=UTC)
RID = "3f9a2c1e-0d4b-4c1f-9a7e-2b8f6d5c4a31"


def row(outcome: str, **fields) -> store.AttemptRecord:
    fields.setdefault("duration_ms", 41)
    return store.AttemptRecord(
        request_id=RID,
        event="order_changed",
        endpoint="pharmacy",
        url="https://pharmacy.example.com/hooks?patient=1",
        attempt=1,
        outcome=outcome,
        created_at=T0,
        **fields,
    )


def later(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "attempt, said",
    [
        (row("delivered", http_status=200), "delivered 200"),
        (
            row("retry_scheduled", http_status=503, error="HTTP 503 Busy", next_attempt_at=later(75)),
            "retry in 75 s after 503",
        ),
        (
            row(
                "retry_scheduled",
                failure="connection_error",
                error="connection refused by 127.0.0.1:9000",
                next_attempt_at=later(30),
            ),
            "retry in 30 s: connection refused by 127.0.0.1:9000",
        ),
        (
            row(
                "retry_scheduled",
                failure="timeout",
                error="no answer within 30 s",
                next_attempt_at=later(600),
            ),
            "retry in 10 min: no answer within 30 s",
        ),
        (
            row("retry_scheduled", http_status=429, error="HTTP 429", next_attempt_at=later(3 * 3600)),
            "retry in 3 h after 429",
        ),
        (row("failed", http_status=400, error='HTTP 400 {"patient":"Zoë"}'), "failed 400"),
        (
            row("failed", http_status=503, error="HTTP 503 Zoë's; attempts exhausted"),
            "failed 503 (attempts exhausted)",
        ),
        (
            row(
                "failed",
                failure="dns_error",
                error="could not resolve partner.example.com; attempts exhausted",
            ),
            "failed: could not resolve partner.example.com; attempts exhausted",
        ),
        (
            row(
                "failed",
                failure="destination_refused",
                error="127.0.0.1 is not allowed (loopback): add it to allow_networks",
            ),
            "refused: 127.0.0.1 is not allowed (loopback): add it to allow_networks",
        ),
        (
            row("failed", error="endpoint 'pharmacy' is no longer configured", duration_ms=0),
            "failed: endpoint 'pharmacy' is no longer configured",
        ),
    ],
)
def test_the_terminal_line_says_the_outcome_and_never_the_partners_words(attempt, said: str) -> None:
    line = recording.attempt_line(attempt)
    moment = T0.astimezone().strftime("%H:%M:%S")
    assert line == f"{moment}  order_changed  pharmacy  3f9a2c1e  {said}  {attempt.duration_ms} ms"
    assert "Zoë" not in line and "patient" not in line and "Busy" not in line


def test_the_example_of_the_issue_word_for_word() -> None:
    line = recording.attempt_line(row("delivered", http_status=200))
    assert line.split("  ", 1)[1] == "order_changed  pharmacy  3f9a2c1e  delivered 200  41 ms"


def test_record_says_each_attempt_on_the_terminal_once_written(runtime, terminal) -> None:
    group = claims(runtime, 2)
    recording.record(runtime, [delivered(c, duration_ms=7) for c in group], runtime.worker_name)
    assert statuses(runtime, group) == ["delivered", "delivered"]
    lines = terminal.getvalue().splitlines()
    assert [line.split("  ")[3:] for line in lines] == [
        [c.request_id[:8], "delivered 200", "7 ms"] for c in group
    ]


def test_a_record_held_in_the_spool_is_said_too(make_runtime, monkeypatch, terminal) -> None:
    runtime = make_runtime()
    (claim,) = claims(runtime, 1)
    monkeypatch.setattr(recording, "_DB_WRITE", Retrying(stop=stop_after_attempt(1), reraise=True))
    monkeypatch.setattr(store, "record_attempts", away)
    recording.record(runtime, [delivered(claim)], runtime.worker_name)
    assert len(spooled(runtime)) == 1
    assert f"  {claim.request_id[:8]}  delivered 200  " in terminal.getvalue()
