"""Reading by Selection with the one keyset pager (dispatcher.store.selection), on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatcher import store
from dispatcher.vocabulary import DeliveryStatus
from tests.store.rows import T0, attempt_record, new_delivery


def test_list_deliveries_newest_first_with_filters_and_limit(engine) -> None:
    rows = []
    for i, event in enumerate(
        ["order_changed", "message_created", "order_changed", "encounter_cancelled"] * 2
    ):
        row = new_delivery(event=event)
        store.insert_deliveries(engine, [row], now=T0 + timedelta(minutes=i))
        rows.append(row)
    # Two of them delivered.
    for row in (rows[2], rows[5]):
        claim = store.claim(engine, row.request_id, "w1", now=T0 + timedelta(hours=1))
        store.record_attempt(
            engine, attempt_record(claim, "delivered", created_at=T0 + timedelta(hours=1)), "w1"
        )

    listed = store.list_deliveries(engine)
    assert [r["request_id"] for r in listed] == [r.request_id for r in reversed(rows)]
    assert set(listed[0]) == set(store.DELIVERY_FIELDS)
    assert all(r["created_at"].utcoffset() == timedelta(0) for r in listed)

    assert [r["request_id"] for r in store.list_deliveries(engine, limit=3)] == [
        rows[7].request_id,
        rows[6].request_id,
        rows[5].request_id,
    ]
    orders = store.list_deliveries(engine, store.Selection(event="order_changed"))
    assert [r["request_id"] for r in orders] == [
        rows[6].request_id,
        rows[4].request_id,
        rows[2].request_id,
        rows[0].request_id,
    ]
    delivered = store.list_deliveries(engine, store.Selection(statuses=("delivered",)))
    assert [r["request_id"] for r in delivered] == [rows[5].request_id, rows[2].request_id]
    assert all(
        r["status"] == "delivered" and r["attempts"] == 1 and r["last_http_status"] == 200 for r in delivered
    )
    both = store.list_deliveries(
        engine, store.Selection(event="order_changed", statuses=("queued",)), limit=1
    )
    assert [r["request_id"] for r in both] == [rows[6].request_id]
    assert store.list_deliveries(engine, store.Selection(event="case_assigned_to_clinician")) == []


def unfinished(engine, statuses, older_than, batch):
    """What reconcile reads: deliveries in ``statuses`` not updated since ``older_than``."""
    selection = store.Selection(statuses=tuple(statuses), updated_before=older_than)
    columns = ("request_id", "status", "updated_at")
    rows = store.rows(engine, selection, columns, order_by=("updated_at", "request_id"), batch=batch)
    return [dict(row._mapping) for row in rows]


def test_the_keyset_pager_pages_across_batches_and_ties(engine) -> None:
    # 10 queued rows; several share an updated_at so page boundaries fall inside a tie.
    times = [T0, T0, T0, T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=1), T0 + timedelta(seconds=2),
             T0 + timedelta(seconds=2), T0 + timedelta(seconds=2), T0 + timedelta(seconds=3)]  # fmt: skip
    expected = []
    for i, when in enumerate(times):
        request_id = f"00000000-0000-4000-8000-{i:012d}"
        store.insert_deliveries(engine, [new_delivery(request_id)], now=when)
        expected.append(request_id)
    # Noise: a delivered row, and a queued row newer than the cut-off.
    done = new_delivery()
    store.insert_deliveries(engine, [done], now=T0)
    done_claim = store.claim(engine, done.request_id, "w1", now=T0)
    store.record_attempt(engine, attempt_record(done_claim, "delivered", created_at=T0), "w1")
    store.insert_deliveries(engine, [new_delivery()], now=T0 + timedelta(hours=1))

    cutoff = T0 + timedelta(minutes=1)
    got = unfinished(engine, [DeliveryStatus.QUEUED], cutoff, batch=3)
    assert [r["request_id"] for r in got] == expected
    assert len({r["request_id"] for r in got}) == 10
    assert all(
        r["status"] == DeliveryStatus.QUEUED and r["updated_at"].utcoffset() == timedelta(0) for r in got
    )

    # Batch sizes that divide the rows exactly, and one larger than all of them.
    for batch in (1, 2, 5, 10, 1000):
        assert [r["request_id"] for r in unfinished(engine, ["queued"], cutoff, batch=batch)] == expected
    # Several statuses at once; the cut-off is strict.
    assert len(unfinished(engine, ["queued", "delivered"], cutoff, batch=3)) == 11
    assert [
        r["request_id"] for r in unfinished(engine, ["queued"], T0 + timedelta(seconds=1), batch=3)
    ] == expected[:4]
    assert (unfinished(engine, ["retrying"], cutoff, batch=3)) == []


def test_the_pager_reads_newest_first_across_ties(engine) -> None:
    ids = []
    for i, when in enumerate(
        [T0, T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]
    ):
        row = new_delivery(f"00000000-0000-4000-8000-{i:012d}")
        store.insert_deliveries(engine, [row], now=when)
        ids.append(row.request_id)
    newest_first = sorted(ids, key=lambda rid: (ids.index(rid) // 2, rid), reverse=True)
    for batch in (1, 2, 3, 10):
        got = [
            r.request_id
            for r in store.rows(engine, store.Selection(), ("request_id",), descending=True, batch=batch)
        ]
        assert got == newest_first


def test_a_selection_reads_attempts_on_their_own_columns(engine) -> None:
    row = new_delivery(event="message_created")
    store.insert_deliveries(engine, [row], now=T0)
    claim = store.claim(engine, row.request_id, "w1", now=T0)
    store.record_attempt(engine, attempt_record(claim, "delivered", created_at=T0 + timedelta(hours=1)), "w1")
    in_window = store.Selection(event="message_created", since=T0 + timedelta(minutes=30))
    assert store.count(engine, in_window, store.ATTEMPTS) == 1
    assert store.count(engine, in_window) == 0  # the delivery itself was created before the window
    with pytest.raises(ValueError, match="statuses, updated_before and with_payload select deliveries"):
        store.count(engine, store.Selection(statuses=(DeliveryStatus.QUEUED,)), store.ATTEMPTS)


def test_status_counts_name_every_status(engine) -> None:
    store.insert_deliveries(engine, [new_delivery(), new_delivery()], now=T0)
    counts = store.status_counts(engine)
    assert counts == {"queued": 2, "in_flight": 0, "retrying": 0, "delivered": 0, "failed": 0}


def test_endpoints_of_reads_each_named_deliverys_endpoint_at_once(engine) -> None:
    a, b = new_delivery(endpoint="partner-a"), new_delivery(endpoint="partner-b")
    store.insert_deliveries(engine, [a, b], now=T0)
    assert store.endpoints_of(engine, [b.request_id, a.request_id, "no-such-id"]) == {
        a.request_id: "partner-a",
        b.request_id: "partner-b",
    }
    assert store.endpoints_of(engine, []) == {}
