"""The business-id index (:mod:`dispatcher.store.search`) on SQLite and PostgreSQL: which ids an
event's data gives, the keyed hash, the rows stored with their deliveries and found by a
Selection, gone with their delivery (prune, retention's delete, erase), and migration 0010."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

import pytest
import sqlalchemy as sa

from dispatcher import store
from dispatcher.contract import catalogue
from dispatcher.store import browsing, erasure, search, versioning
from dispatcher.store.idempotency import IdempotencyKey
from tests.store.rows import T0, attempt_record, new_delivery

KEY = "k" * 43
OTHER_KEY = "o" * 43


def indexed(*values: str, **fields) -> store.NewDelivery:
    """A new delivery indexed under ``values`` (KEY)."""
    row = new_delivery(**fields)
    return dataclasses.replace(row, business_keys=tuple(search.business_key(KEY, v) for v in values))


def stored_rows(engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return sorted(
            conn.execute(sa.select(store.BUSINESS_IDS.c.request_id, store.BUSINESS_IDS.c.digest)).all()
        )


def found(engine, value: str, key: str = KEY) -> set[str]:
    selection = store.Selection(business_key=search.business_key(key, value))
    return {row.request_id for row in store.rows(engine, selection, ("request_id",))}


def test_every_events_ids_are_its_top_level_ids_and_its_medications() -> None:
    ids = {name: search.business_ids(model.example()) for name, model in catalogue.CATALOGUE.items()}
    assert ids == {
        "prescription_submitted": ["encounter_id", "patient_unique_id", "prx_rx_id"],
        "prescription_dosage_changed": ["encounter_id", "patient_unique_id", "prx_rx_id"],
        "encounter_cancelled": ["encounter_id", "patient_unique_id"],
        "message_created": ["encounter_id", "patient_unique_id"],
        "order_changed": ["ORDER123"],
        "case_assigned_to_clinician": ["encounter_id", "patient_unique_id"],
    }
    data = {
        "order_number": "ORD-1",
        "prescription_id": "RX-1",
        "patient_id": "PAT-1",
        "encounter_id": "PAT-1",  # the same value once
        "medication": [{"rx_order_id": "RXO-1", "prescribed_item_id": "ITEM-1"}, {"rx_order_id": None}, "x"],
        "author_id": "DR-1",  # not a business id
    }
    assert search.business_ids(data) == ["ORD-1", "RX-1", "PAT-1", "RXO-1", "ITEM-1"]
    assert search.business_ids({"order_number": "", "patient_id": 7}) == []


def test_the_hash_is_keyed_domain_separated_and_names_no_field() -> None:
    digest = search.business_key(KEY, "ORDER123")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == hmac.new(KEY.encode(), b"business-id\x00ORDER123", hashlib.sha256).hexdigest()
    assert digest != hmac.new(KEY.encode(), b"ORDER123", hashlib.sha256).hexdigest()
    assert digest != search.business_key(OTHER_KEY, "ORDER123")
    assert search.business_keys(KEY, {"order_number": "ORDER123"}) == (digest,)
    assert search.business_keys(KEY, {"patient_id": "ORDER123"}) == (digest,)
    assert search.business_keys(None, {"order_number": "ORDER123"}) == ()


def test_a_new_key_is_fresh_and_long_enough() -> None:
    first, second = search.new_key(), search.new_key()
    assert first != second and len(first) >= 32 and first.isascii()


def test_needs_key_is_one_line_saying_what_to_do() -> None:
    assert search.needs_key("log list --business-id") == (
        "log list --business-id needs search_key: run dispatcher keys generate --search and set "
        "DISPATCHER_SEARCH_KEY"
    )


def test_rows_are_stored_with_the_deliveries_and_found_by_any_of_their_ids(engine) -> None:
    order, prescription = indexed("ORDER123"), indexed("PAT-1", "ENC-1", "RX-1")
    both = indexed("PAT-1", "PAT-1", endpoint="partner-b")
    bare = new_delivery()
    store.insert_deliveries(engine, [order, prescription, both, bare], now=T0)

    assert len(stored_rows(engine)) == 5  # a repeated id once per delivery, none for the bare one
    assert found(engine, "ORDER123") == {order.request_id}
    assert found(engine, "PAT-1") == {prescription.request_id, both.request_id}
    assert found(engine, "RX-1") == found(engine, "ENC-1") == {prescription.request_id}
    assert found(engine, "ORDER124") == found(engine, "order123") == found(engine, "ORDER123 ") == set()
    assert found(engine, "ORDER123", OTHER_KEY) == set()

    patient = store.Selection(business_key=search.business_key(KEY, "PAT-1"))
    assert store.count(engine, patient) == 2
    assert store.count_by_status(engine, patient) == {"queued": 2}
    assert {r["request_id"] for r in store.list_deliveries(engine, patient)} == found(engine, "PAT-1")
    page, _ = browsing.newest_first(engine, dataclasses.replace(patient, endpoint="partner-b"))
    assert [r["request_id"] for r in page] == [both.request_id]


def test_a_selection_takes_the_attempts_of_the_deliveries_found(engine) -> None:
    order, other = indexed("ORDER123"), indexed("ORDER999")
    store.insert_deliveries(engine, [order, other], now=T0)
    for row in (order, other):
        claim = store.claim(engine, row.request_id, "w1")
        store.record_attempt(engine, attempt_record(claim, "delivered"), "w1")
    selection = store.Selection(business_key=search.business_key(KEY, "ORDER123"))
    assert store.count(engine, selection, store.ATTEMPTS) == 1
    assert store.count(engine, store.Selection(), store.ATTEMPTS) == 2


def test_an_idempotent_repeat_stores_no_rows(engine) -> None:
    key = IdempotencyKey(given="k-1", hashes=("a" * 64,), fingerprints=("f" * 64,), event="order_changed")
    first = dataclasses.replace(indexed("ORDER123"), idempotency=key)
    store.insert_deliveries(engine, [first], now=T0)
    repeat = dataclasses.replace(indexed("ORDER123"), idempotency=key)
    assert store.insert_deliveries(engine, [repeat], now=T0).repeated == {"k-1": [first.request_id]}
    assert found(engine, "ORDER123") == {first.request_id}
    assert len(stored_rows(engine)) == 1


def _final(engine, *rows: store.NewDelivery) -> None:
    store.insert_deliveries(engine, list(rows), now=T0)
    for row in rows:
        store.fail_delivery(engine, row.request_id, "test", now=T0)


def test_the_rows_go_when_their_delivery_is_deleted(engine) -> None:
    gone, kept = indexed("ORDER123"), indexed("ORDER123", "PAT-1")
    _final(engine, gone, kept)
    pending = indexed("ORDER123")
    store.insert_deliveries(engine, [pending], now=T0)

    later = T0.replace(year=T0.year + 1)
    assert store.delete_final(engine, [gone.request_id, pending.request_id], ["failed"], later) == (1, 0)

    assert found(engine, "ORDER123") == {kept.request_id, pending.request_id}
    assert {request_id for request_id, _ in stored_rows(engine)} == {kept.request_id, pending.request_id}


def test_the_rows_go_when_their_delivery_is_erased(engine) -> None:
    erased, kept, pending = indexed("PAT-1", "ENC-1"), indexed("PAT-1"), indexed("PAT-1")
    _final(engine, erased, kept)
    store.insert_deliveries(engine, [pending], now=T0)

    assert erasure.erase(engine, [erased.request_id, pending.request_id], T0).deliveries == 1

    assert found(engine, "PAT-1") == {kept.request_id, pending.request_id}
    assert found(engine, "ENC-1") == set()
    assert store.get_delivery(engine, erased.request_id) is not None  # the delivery itself stays


def test_migration_0010_adds_the_table_and_a_downgrade_drops_it(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    row = indexed("ORDER123")
    store.insert_deliveries(engine, [row], now=T0)

    assert versioning.downgrade(engine, "0009") == ["0012", "0011", "0010"]
    assert "webhook_business_ids" not in sa.inspect(engine).get_table_names()
    assert store.get_delivery(engine, row.request_id) is not None

    assert versioning.upgrade(engine) == ["0010", "0011", "0012"]
    inspector = sa.inspect(engine)
    assert "webhook_business_ids" in inspector.get_table_names()
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("webhook_business_ids")}
    assert indexes["ix_webhook_business_ids_digest"] == ["digest", "request_id"]
    assert stored_rows(engine) == [] and found(engine, "ORDER123") == set()  # not indexed before
    versioning.check(engine)
    engine.dispose()


@pytest.mark.parametrize("table", ["webhook_business_ids"])
def test_the_table_holds_hashes_only(table: str) -> None:
    columns = {c.name: c.type for c in store.METADATA.tables[table].c}
    assert set(columns) == {"request_id", "digest"}
    assert columns["digest"].length == 64
