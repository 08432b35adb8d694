"""Encryption at rest (dispatcher.store.sealing), on both backends: the PHI columns sealed with
the storage keys and read back opened, stored as they are without keys, a message body nowhere in
SQLite's files once sealed, and a malformed key refused without quoting it (sealing rows already
stored, and rotation, is tests/store/test_resealing.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher import store
from dispatcher.store import resealing
from dispatcher.store.sealing import PREFIX, Keyring, check_key, new_key
from tests.store.rows import SECRET_TEXT, deliver, phi_delivery, raw_values


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
