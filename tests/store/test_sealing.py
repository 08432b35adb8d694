"""Encryption at rest, on both backends: the PHI columns sealed with the storage keys, read back
opened, rows written before keys sealed later, rotation, and a row no key opens named, never a
traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from dispatcher import store
from dispatcher.store import resealing
from dispatcher.store.sealing import PREFIX, Keyring, Unreadable, check_key, new_key
from tests.store.rows import T0, attempt_record, new_delivery

SECRET_TEXT = "Take 40 mg of Furosemide at 7am - patient Ada Lovelace"


def phi_delivery() -> store.NewDelivery:
    row = new_delivery(event="message_created")
    body = {
        "event": "message_created",
        "data": {"patient_id": "P-1", "encounter_id": "E-1", "message": SECRET_TEXT},
    }
    return store.NewDelivery(**{**row.__dict__, "payload": json.dumps(body)})


def deliver(engine, row: store.NewDelivery) -> None:
    store.insert_deliveries(engine, [row], now=T0)
    claim = store.claim(engine, row.request_id, "w1")
    record = attempt_record(claim, "delivered")
    record = type(record)(**{**record.__dict__, "response_body": f"echo: {SECRET_TEXT}"})
    store.record_attempt(engine, record, "w1")


def raw_values(engine) -> list[str]:
    """Every PHI column as stored."""
    with engine.connect() as conn:
        return [
            value
            for table, column, _ in resealing.COLUMNS
            for (value,) in conn.execute(sa.select(sa.type_coerce(table.c[column], sa.String())))
            if value is not None
        ]


def test_with_keys_every_phi_column_is_sealed_and_read_back_opened(database_url: str) -> None:
    keyring = Keyring([new_key()])
    engine = store.create_store_engine(database_url, keyring)
    row = phi_delivery()
    deliver(engine, row)
    stored = raw_values(engine)
    assert len(stored) == 3 and all(v.startswith(f"{PREFIX}{keyring.key_ids[0]}:") for v in stored)
    assert not any(SECRET_TEXT in v or "Furosemide" in v for v in stored)
    assert SECRET_TEXT in store.get_delivery(engine, row.request_id)["payload"]
    (attempt,) = store.list_attempts(engine, row.request_id)
    assert attempt["response_body"] == f"echo: {SECRET_TEXT}"
    assert SECRET_TEXT in attempt["request_payload"]
    engine.dispose()


def test_without_keys_values_are_stored_as_they_are(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    deliver(engine, phi_delivery())
    assert sum(SECRET_TEXT in v for v in raw_values(engine)) == 3
    engine.dispose()


def test_a_message_body_is_not_in_the_sqlite_files_bytes(tmp_path: Path) -> None:
    """Written plain, then sealed by `storage encrypt`: the text is nowhere in the file or its WAL."""
    url = f"sqlite:///{tmp_path / 'phi.db'}"
    engine = store.create_store_engine(url)
    for _ in range(20):
        deliver(engine, phi_delivery())
    engine.dispose()
    keyring = Keyring([new_key()])
    engine = store.create_store_engine(url, keyring)
    report = resealing.reseal(engine, keyring, "encrypt")
    assert report.sealed == {
        "webhook_deliveries.payload": 20,
        "webhook_event_transaction_log.request_payload": 20,
        "webhook_event_transaction_log.response_body": 20,
        "webhook_event_transaction_log.error": 0,
    }
    from dispatcher.store import erasure

    erasure.compact(engine)
    engine.dispose()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("phi.db")]
    data = b"".join(p.read_bytes() for p in files)
    assert b"Furosemide" not in data and SECRET_TEXT.encode() not in data
    assert b"P-1" not in data  # the patient id is stored only as a keyed hash


def test_encrypt_is_resumable_and_does_only_what_is_left(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    for _ in range(5):
        deliver(engine, phi_delivery())
    engine.dispose()
    keyring = Keyring([new_key()])
    engine = store.create_store_engine(database_url, keyring)
    assert sum(resealing.count_to_do(engine, keyring, "encrypt").values()) == 15
    first = resealing.reseal(engine, keyring, "encrypt", batch=2)
    assert sum(first.sealed.values()) == 15
    assert sum(resealing.count_to_do(engine, keyring, "encrypt").values()) == 0
    again = resealing.reseal(engine, keyring, "encrypt")
    assert sum(again.sealed.values()) == 0
    engine.dispose()


def test_rotation_reseals_under_the_first_key_and_an_old_key_can_then_go(database_url: str) -> None:
    old, new = new_key(), new_key()
    engine = store.create_store_engine(database_url, Keyring([old]))
    row = phi_delivery()
    deliver(engine, row)
    engine.dispose()

    both = Keyring([new, old])
    engine = store.create_store_engine(database_url, both)
    assert SECRET_TEXT in store.get_delivery(engine, row.request_id)["payload"]  # the old key still opens
    assert resealing.count_to_do(engine, both, "rotate") == {
        "webhook_deliveries.payload": 1,
        "webhook_event_transaction_log.request_payload": 1,
        "webhook_event_transaction_log.response_body": 1,
        "webhook_event_transaction_log.error": 0,
    }
    report = resealing.reseal(engine, both, "rotate")
    assert sum(report.sealed.values()) == 3 and report.unreadable == []
    assert all(v.startswith(both.first_prefix) for v in raw_values(engine))
    engine.dispose()

    engine = store.create_store_engine(database_url, Keyring([new]))
    assert SECRET_TEXT in store.get_delivery(engine, row.request_id)["payload"]
    engine.dispose()


def test_a_row_under_a_key_not_configured_is_named_not_raised(database_url: str) -> None:
    lost = Keyring([new_key()])
    engine = store.create_store_engine(database_url, lost)
    row = phi_delivery()
    deliver(engine, row)
    engine.dispose()

    other = Keyring([new_key()])
    engine = store.create_store_engine(database_url, other)
    payload = store.get_delivery(engine, row.request_id)["payload"]
    assert isinstance(payload, Unreadable)
    assert (
        payload.problem
        == f"it is encrypted under storage key {lost.key_ids[0]}, which is not in storage_keys"
    )
    report = resealing.reseal(engine, other, "rotate")
    assert sum(report.sealed.values()) == 0
    assert report.unreadable[0] == (
        f"webhook_deliveries.payload of request_id {row.request_id}: {payload.problem}"
    )
    assert len(report.unreadable) == 3
    engine.dispose()


def test_a_value_changed_while_resealing_keeps_the_new_value(database_url: str) -> None:
    keyring = Keyring([new_key()])
    engine = store.create_store_engine(database_url)
    row = phi_delivery()
    deliver(engine, row)
    with engine.connect() as conn:
        (raw,) = conn.execute(sa.select(sa.type_coerce(store.DELIVERIES.c.payload, sa.String()))).one()
    with engine.begin() as conn:  # a worker's write lands between the read and the write
        conn.execute(store.DELIVERIES.update().values(payload='{"changed": true}'))
    written = resealing._write(
        engine,
        store.DELIVERIES,
        store.DELIVERIES.c.payload,
        store.DELIVERIES.c.request_id,
        [{"pk": row.request_id, "old": raw, "new": keyring.seal(raw), "patient": "-", "encounter": "-"}],
    )
    assert written == 0
    assert store.get_delivery(engine, row.request_id)["payload"] == '{"changed": true}'
    engine.dispose()


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("not base64 at all!", "is not a storage key: expected url-safe base64 of 32 bytes"),
        ("c2hvcnQ=", "it decodes to 5 bytes, not 32"),
        ("é" * 44, "is not a storage key: expected url-safe base64 of 32 bytes"),
    ],
)
def test_a_malformed_storage_key_is_refused_without_quoting_it(key: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_key(key)
    assert problem in str(caught.value) and key not in str(caught.value)
