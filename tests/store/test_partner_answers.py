"""What a partner answers is PHI (issue 21, finding 5), on both backends: an attempt's error --
the partner's reason phrase, an exception quoting what it sent -- is sealed with the storage
keys like its body, read back opened (and read as it is when written before keys), sealed by
``storage encrypt``, capped at 1,000 characters, and emptied with the payload by ``log erase``
and retention; the attempt keeps its status code and failure kind."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa

from dispatcher import store
from dispatcher.store import erasure, resealing
from dispatcher.store.sealing import PREFIX, Keyring, new_key
from dispatcher.worker import spool
from tests.store.rows import T0, attempt_record, new_delivery

PHRASE = "Unprocessable: patient Jane Roe, DOB 1961-04-12"
ERROR = f"HTTP 422 {PHRASE}"


def failed_with_answer(engine, error: str = ERROR, failure: str | None = None) -> str:
    """A delivery failed by one attempt whose error quotes the partner; its request id."""
    row = new_delivery(event="message_created")
    store.insert_deliveries(engine, [row], now=T0)
    claim = store.claim(engine, row.request_id, "w1")
    kind = {"failure": failure} if failure else {}  # the failure kind of an attempt not answered
    record = replace(
        attempt_record(claim, "failed", http_status=422 if failure is None else None),
        error=error,
        response_body=f'{{"detail": "{PHRASE}"}}',
        **kind,
    )
    assert store.record_attempt(engine, record, "w1", reason="HTTP 422 is not retried")
    return row.request_id


def raw_errors(engine) -> list[str | None]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(sa.type_coerce(store.ATTEMPTS.c.error, sa.String()))).scalars())


def test_with_keys_an_attempts_error_is_sealed_and_read_back_opened(database_url: str) -> None:
    keyring = Keyring([new_key()])
    engine = store.create_store_engine(database_url, keyring)
    request_id = failed_with_answer(engine)

    (raw,) = raw_errors(engine)
    assert raw.startswith(f"{PREFIX}{keyring.key_ids[0]}:") and "Jane Roe" not in raw
    (attempt,) = store.list_attempts(engine, request_id)
    assert attempt["error"] == ERROR and attempt["http_status"] == 422
    assert store.get_delivery(engine, request_id)["reason"] == "HTTP 422 is not retried"
    engine.dispose()


def test_an_error_written_before_keys_reads_as_it_is_and_storage_encrypt_seals_it(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    request_id = failed_with_answer(engine)
    engine.dispose()
    keyring = Keyring([new_key()])
    engine = store.create_store_engine(database_url, keyring)
    assert store.list_attempts(engine, request_id)[0]["error"] == ERROR

    assert resealing.count_to_do(engine, keyring, "encrypt")["webhook_event_transaction_log.error"] == 1
    report = resealing.reseal(engine, keyring, "encrypt")

    assert report.sealed["webhook_event_transaction_log.error"] == 1
    assert all(v.startswith(PREFIX) for v in raw_errors(engine))
    assert store.list_attempts(engine, request_id)[0]["error"] == ERROR
    engine.dispose()


def test_erasing_a_delivery_empties_its_attempts_errors(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    request_id = failed_with_answer(engine)

    erased = erasure.erase(engine, [request_id], T0)

    assert erased == erasure.Erased(1, 1)
    assert raw_errors(engine) == [None]
    (attempt,) = store.list_attempts(engine, request_id)
    assert attempt["http_status"] == 422 and attempt["response_body"] is None
    assert store.get_delivery(engine, request_id)["reason"] == "HTTP 422 is not retried"
    engine.dispose()


def test_an_erased_attempt_keeps_its_failure_kind(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    request_id = failed_with_answer(engine, error="read timeout after 5001 ms", failure="timeout")

    erasure.erase(engine, [request_id], T0)

    (attempt,) = store.list_attempts(engine, request_id)
    assert (attempt["error"], attempt["http_status"], attempt["failure"]) == (None, None, "timeout")
    engine.dispose()


def test_after_erase_without_keys_the_answer_is_not_in_the_sqlite_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    engine = store.create_store_engine(url)
    request_ids = [failed_with_answer(engine) for _ in range(20)]

    erasure.erase(engine, request_ids, T0)
    erasure.compact(engine)
    engine.dispose()

    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("log.db"))
    assert b"Jane Roe" not in data


def test_a_stored_error_is_at_most_1000_characters(database_url: str) -> None:
    from dispatcher.store.records import STORED_ERROR_CHARS

    engine = store.create_store_engine(database_url)
    request_id = failed_with_answer(engine, error="HTTP 422 " + "x" * 60_000 + "; attempts exhausted")

    (attempt,) = store.list_attempts(engine, request_id)
    assert len(attempt["error"]) == STORED_ERROR_CHARS == 1000
    assert attempt["error"].startswith("HTTP 422 xxx") and attempt["error"].endswith("...")
    engine.dispose()


def test_a_spooled_attempts_error_is_sealed_on_disk(tmp_path: Path) -> None:
    keyring = Keyring([new_key()])
    record = store.AttemptRecord(
        request_id="r-1",
        event="message_created",
        endpoint="partner-a",
        url="http://127.0.0.1:9/a",
        attempt=1,
        outcome="failed",
        created_at=T0,
        http_status=422,
        error=ERROR,
    )
    path = spool.hold(str(tmp_path), record, "w1", "HTTP 422 is not retried", keyring.seal)
    assert b"Jane Roe" not in path.read_bytes()
    written: list[store.AttemptRecord] = []
    spool.flush(str(tmp_path), lambda r, w, why: written.append(r))
    assert keyring.open(written[0].error or "") == ERROR


def test_upgrading_empties_the_errors_an_earlier_erase_left(database_url: str) -> None:
    from dispatcher.store import versioning

    engine = store.create_store_engine(database_url)
    erased, kept = failed_with_answer(engine), failed_with_answer(engine)
    erasure.erase(engine, [erased], T0)
    versioning.downgrade(engine, "0008")
    with engine.begin() as conn:  # as an erase before 0009 left it: the partner's words kept
        conn.exec_driver_sql(f"UPDATE webhook_event_transaction_log SET error = '{ERROR}'")

    assert versioning.upgrade(engine) == ["0009", "0010", "0011", "0012"]

    assert store.list_attempts(engine, erased)[0]["error"] is None
    assert store.list_attempts(engine, kept)[0]["error"] == ERROR
    engine.dispose()


def test_retention_empties_the_errors_with_the_payloads(database_url: str) -> None:
    from datetime import timedelta

    from dispatcher.times import utcnow
    from dispatcher.worker import retention

    engine = store.create_store_engine(database_url)
    request_id = failed_with_answer(engine)

    report = retention.apply(engine, 30, None, now=utcnow() + timedelta(days=31))

    assert report.erased == 1 and report.attempts_erased == 1
    assert raw_errors(engine) == [None]
    assert store.list_attempts(engine, request_id)[0]["http_status"] == 422
    engine.dispose()
