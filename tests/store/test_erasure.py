"""The PHI lifecycle in the log, on both backends: erasing keeps the row and empties every PHI
column, only final deliveries are erased, and a patient's deliveries are found by keyed hash."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa

from dispatcher import store
from dispatcher.store import erasure
from dispatcher.store.sealing import NO_PATIENT, Keyring, new_key
from tests.store.rows import T0, attempt_record, new_delivery


def patient_delivery(
    keyring: Keyring, patient: str, encounter: str, event: str = "message_created"
) -> store.NewDelivery:
    data = {"patient_id": patient, "encounter_id": encounter, "message": f"note for {patient}"}
    row = new_delivery(event=event)
    patient_key, encounter_key = erasure.patient_keys(keyring, data)
    return store.NewDelivery(
        **{
            **row.__dict__,
            "payload": json.dumps({"event": event, "data": data}),
            "patient_key": patient_key,
            "encounter_key": encounter_key,
        }
    )


def finish(engine, row: store.NewDelivery, outcome: str = "delivered") -> None:
    claim = store.claim(engine, row.request_id, "w1", now=T0)
    store.record_attempt(
        engine,
        attempt_record(claim, outcome, http_status=200 if outcome == "delivered" else 404, created_at=T0),
        "w1",
    )


def stored(engine, request_id: str) -> tuple:
    delivery = store.get_delivery(engine, request_id)
    attempts = store.list_attempts(engine, request_id)
    return delivery, attempts


def test_erasing_empties_every_phi_column_and_keeps_the_row(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    keyring = Keyring(())
    row = patient_delivery(keyring, "P-1", "E-1")
    store.insert_deliveries(engine, [row], now=T0)
    finish(engine, row)
    result = erasure.erase(engine, [row.request_id], T0 + timedelta(days=31))
    assert (result.deliveries, result.attempts) == (1, 1)
    delivery, (attempt,) = stored(engine, row.request_id)
    assert delivery["payload"] is None and delivery["payload_erased_at"] == T0 + timedelta(days=31)
    assert (delivery["status"], delivery["attempts"], delivery["last_http_status"]) == ("delivered", 1, 200)
    assert (delivery["patient_key"], delivery["encounter_key"]) == (NO_PATIENT, NO_PATIENT)
    assert attempt["request_payload"] is None and attempt["response_body"] is None
    assert (attempt["outcome"], attempt["http_status"], attempt["duration_ms"]) == ("delivered", 200, 12)
    assert erasure.erase(engine, [row.request_id], T0).deliveries == 0  # once
    engine.dispose()


def test_a_delivery_still_to_be_sent_is_never_erased(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    queued, retrying = new_delivery(), new_delivery()
    store.insert_deliveries(engine, [queued, retrying], now=T0)
    claim = store.claim(engine, retrying.request_id, "w1", now=T0)
    store.record_attempt(
        engine, attempt_record(claim, "retry_scheduled", http_status=503, next_attempt_at=T0), "w1"
    )
    assert erasure.erase(engine, [queued.request_id, retrying.request_id], T0).deliveries == 0
    assert [ids for ids in erasure.erasable(engine, T0 + timedelta(days=365)) if ids] == []
    assert store.get_delivery(engine, retrying.request_id)["payload"] is not None
    engine.dispose()


def test_erasable_by_age_oldest_first_and_never_again(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    rows = [new_delivery() for _ in range(4)]
    store.insert_deliveries(engine, rows, now=T0)
    for row in rows:
        finish(engine, row, "failed")
    with engine.begin() as conn:
        for age, row in zip((40, 35, 20, 1), rows, strict=True):
            conn.execute(
                store.DELIVERIES.update()
                .where(store.DELIVERIES.c.request_id == row.request_id)
                .values(updated_at=T0 - timedelta(days=age))
            )
    cutoff = T0 - timedelta(days=30)
    assert list(erasure.erasable(engine, cutoff)) == [[rows[0].request_id, rows[1].request_id]]
    assert erasure.count_erasable_before(engine, cutoff) == 2
    first_page = next(erasure.erasable(engine, cutoff, batch=1))
    assert first_page == [rows[0].request_id]  # oldest first
    erasure.erase(engine, first_page, T0)
    assert list(erasure.erasable(engine, cutoff)) == [[rows[1].request_id]]
    assert erasure.count_erasable_before(engine, cutoff) == 1
    engine.dispose()


def test_a_patients_deliveries_are_found_by_keyed_hash_under_any_configured_key(database_url: str) -> None:
    old_key = new_key()
    old = Keyring([old_key])
    engine = store.create_store_engine(database_url, old)
    mine = [patient_delivery(old, "P-7", "E-1"), patient_delivery(old, "P-7", "E-2")]
    other = patient_delivery(old, "P-8", "E-1")
    unkeyed = patient_delivery(Keyring(()), "P-7", "E-3")  # indexed before keys were set
    store.insert_deliveries(engine, [*mine, other, unkeyed], now=T0)
    with engine.connect() as conn:
        keys = set(conn.execute(sa.select(store.DELIVERIES.c.patient_key)).scalars())
    assert not any("P-7" in k or "P-8" in k for k in keys)

    rotated = Keyring([new_key(), old_key])
    found = erasure.patient_deliveries(engine, rotated.candidates("P-7"))
    assert {d.request_id for d in found} == {mine[0].request_id, mine[1].request_id, unkeyed.request_id}
    one_visit = erasure.patient_deliveries(engine, rotated.candidates("P-7"), rotated.candidates("E-2"))
    assert [d.request_id for d in one_visit] == [mine[1].request_id]
    stranger = erasure.patient_deliveries(engine, Keyring([new_key()]).candidates("P-7"))
    assert [d.request_id for d in stranger] == [unkeyed.request_id]  # an unkeyed hash: anyone finds it
    engine.dispose()


def test_rows_without_keys_are_indexed_from_their_payload(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    keyring = Keyring([new_key()])
    row = patient_delivery(keyring, "P-9", "E-9")
    order = new_delivery(event="order_changed")
    unindexed = [
        store.NewDelivery(**{**r.__dict__, "patient_key": None, "encounter_key": None}) for r in (row, order)
    ]
    store.insert_deliveries(engine, unindexed, now=T0)
    assert erasure.count_unindexed(engine) == 2
    assert erasure.index_missing(engine, keyring, batch=1) == []
    assert erasure.count_unindexed(engine) == 0
    assert [d.request_id for d in erasure.patient_deliveries(engine, keyring.candidates("P-9"))] == [
        row.request_id
    ]
    engine.dispose()


def test_retention_reads_only_unerased_rows_by_age_never_the_whole_log(tmp_path) -> None:
    """SQLite's plan for every statement erasable() and count_erasable_before() run: the index
    of unerased rows by age; never a scan, never the status index (which spans the whole log)."""
    engine = store.create_store_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    store.insert_deliveries(engine, [new_delivery() for _ in range(3)], now=T0)
    statements: list[tuple[str, tuple]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    list(erasure.erasable(engine, T0 + timedelta(days=1), batch=2))
    erasure.count_erasable_before(engine, T0 + timedelta(days=1))
    sa.event.remove(engine, "before_cursor_execute", capture)
    assert len(statements) >= 4
    with engine.connect() as conn:
        for statement, parameters in statements:
            plan = " | ".join(
                str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
            pending_only = "status IN" in statement and "'delivered'" not in str(parameters)
            assert "SCAN webhook_deliveries" not in plan, plan
            assert "ix_webhook_deliveries_unerased" in plan or pending_only, plan
    engine.dispose()
