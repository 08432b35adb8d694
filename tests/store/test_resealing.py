"""Sealing rows already stored (dispatcher.store.resealing), on both backends: ``storage
encrypt`` is resumable and does only what is left, rotation reseals under the first key, a row
no configured key opens is named, never raised, and a value changed meanwhile keeps the new value."""

from __future__ import annotations

import sqlalchemy as sa

from dispatcher import store
from dispatcher.store import resealing
from dispatcher.store.sealing import Keyring, Unreadable, new_key
from tests.store.rows import SECRET_TEXT, deliver, phi_delivery, raw_values


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
