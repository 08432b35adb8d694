"""The business-id index written at dispatch, on the real Redis and SQLite and PostgreSQL: every
way in (dispatch, dispatch_many, the outbox, replay) stores each delivery's ids as keyed hashes
in the delivery's own transaction, a search finds them whichever field held them, nothing is
written without ``search_key``, and no id is stored in plain text anywhere."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dispatcher import dispatch, dispatch_many, store
from dispatcher.intake.outbox import dispatch_in_transaction
from dispatcher.store import search
from dispatcher.store.sealing import new_key

SEARCH_KEY = "search-key-for-tests-0123456789abcdef"
ENDPOINTS = [
    {"name": "pharmacy", "url": "http://127.0.0.1:9/a", "key": "pharmacy-key-1"},
    {
        "name": "partner-b",
        "url": "http://127.0.0.1:9/b",
        "key": "partner-b-key-1",
        "events": ["order_changed"],
    },
]
TIME = "2026-12-01T09:00:00Z"
MEDICATION = {"quantity": 1, "directions": "daily", "medication": "Aspirin"}


def events_holding(n: int) -> dict[str, dict]:
    """Each of the six events, its ids numbered ``n``: ORD-n, PAT-n, ENC-n, RXO-n, ITEM-n."""
    person = {"patient_id": f"PAT-{n}", "encounter_id": f"ENC-{n}"}
    medication = [{**MEDICATION, "prescribed_item_id": f"ITEM-{n}", "rx_order_id": f"RXO-{n}"}]
    return {
        "prescription_submitted": {
            **person,
            "order_number": f"ORD-{n}",
            "medication": medication,
            "created_at": TIME,
        },
        "prescription_dosage_changed": {
            **person,
            "medication": medication,
            "dosage_change": True,
            "created_at": TIME,
        },
        "encounter_cancelled": {
            **person,
            "reason": "r",
            "cancel_by_name": "Dr",
            "cancel_by_id": "DR-1",
            "created_at": TIME,
        },
        "message_created": {
            **person,
            "author_id": "DR-1",
            "is_doctor": True,
            "channel": "patient",
            "message": "hello",
            "attachment": [],
            "created_at": TIME,
        },
        "order_changed": {"order_number": f"ORD-{n}", "status": "updated", "created_at": TIME},
        "case_assigned_to_clinician": {**person, "clinician_id": "DR-1", "assigned_at": TIME},
    }


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(
        database_url=database_url, endpoints=ENDPOINTS, search_key=SEARCH_KEY, storage_keys=[new_key()]
    )


def found(runtime, value: str) -> set[str]:
    selection = store.Selection(business_key=search.business_key(SEARCH_KEY, value))
    return {row.request_id for row in store.rows(runtime.engine, selection, ("request_id",))}


def index_rows(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(store.BUSINESS_IDS)).scalar_one())


def test_each_event_is_indexed_by_every_id_its_data_holds(runtime) -> None:
    ids = {event: dispatch(event, data) for event, data in events_holding(1).items()}
    assert found(runtime, "ORD-1") == {*ids["prescription_submitted"], *ids["order_changed"]}
    assert len(ids["order_changed"]) == 2  # one delivery per endpoint, each indexed
    with_patient = [e for e in ids if e != "order_changed"]
    assert found(runtime, "PAT-1") == found(runtime, "ENC-1") == {i for e in with_patient for i in ids[e]}
    prescriptions = {*ids["prescription_submitted"], *ids["prescription_dosage_changed"]}
    assert found(runtime, "RXO-1") == found(runtime, "ITEM-1") == prescriptions
    assert found(runtime, "ORD-2") == found(runtime, "DR-1") == found(runtime, "ord-1") == set()
    # order_changed: 2 deliveries x 1 id; the prescriptions 5 and 4 ids; the other three 2 each
    assert index_rows(runtime.engine) == 2 * 1 + 5 + 4 + 2 + 2 + 2


def test_dispatch_many_and_the_outbox_index_in_their_transaction(runtime) -> None:
    many = dispatch_many("order_changed", [events_holding(n)["order_changed"] for n in (2, 3)])
    assert found(runtime, "ORD-2") | found(runtime, "ORD-3") == set(many)

    data = events_holding(4)["message_created"]
    with Session(runtime.engine) as session:
        (rolled_back,) = dispatch_in_transaction(session, "message_created", data)
        session.rollback()
    assert found(runtime, "PAT-4") == set()
    with Session(runtime.engine) as session:
        (committed,) = dispatch_in_transaction(session, "message_created", data)
        session.commit()
    assert found(runtime, "PAT-4") == {committed} and rolled_back != committed


def test_a_replay_is_indexed_like_its_original(runtime) -> None:
    from dispatcher.ops.replay import Replay

    (original,) = dispatch("message_created", events_holding(5)["message_created"])
    door = Replay(store.Selection(request_id=original), "pharmacy")
    assert door.run(runtime, door.plan(runtime)).replayed == 1
    replays = found(runtime, "PAT-5") - {original}
    assert original in found(runtime, "PAT-5") and len(replays) == 1
    assert store.get_delivery(runtime.engine, replays.pop())["replay_of"] == original


def test_no_id_is_stored_in_plain_text(runtime) -> None:
    for event, data in events_holding(6).items():
        dispatch(event, data, idempotency_key=f"idem-{event}", ordering_key=None)
    with runtime.engine.connect() as conn:
        dumped = repr(
            [
                conn.exec_driver_sql(f"SELECT * FROM {table.name}").all()
                for table in store.METADATA.sorted_tables
            ]
        )
    assert index_rows(runtime.engine) > 0 and "hello" not in dumped  # the payloads are sealed
    for value in ("ORD-6", "PAT-6", "ENC-6", "RXO-6", "ITEM-6"):
        assert value not in dumped


def test_without_a_search_key_nothing_is_indexed(make_runtime, database_url: str) -> None:
    runtime = make_runtime(database_url=database_url, endpoints=ENDPOINTS)
    assert runtime.settings.search_key is None
    assert dispatch("order_changed", events_holding(7)["order_changed"])
    assert index_rows(runtime.engine) == 0
