"""Per-key ordering in the log (dispatcher.store.ordering), on SQLite and the real PostgreSQL:
numbering in commit order, a claim that takes only a key's head, retries to the back, and
what a key's waiting looks like from outside."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from dispatcher import store
from dispatcher.store import ordering
from dispatcher.store.sealing import Keyring
from tests.store.rows import T0, attempt_record, new_delivery

KEYRING = Keyring(())


def ordered(key: str, endpoint: str = "partner-a") -> store.NewDelivery:
    row = new_delivery(endpoint=endpoint)
    candidates = tuple(KEYRING.candidates(f"ordering:{key}"))
    return store.NewDelivery(**{**row.__dict__, "ordering": (ordering.lock_id(endpoint, key), candidates)})


def seqs(engine, rows) -> list[int]:
    with engine.connect() as conn:
        found = dict(
            conn.execute(
                sa.select(store.DELIVERIES.c.request_id, store.DELIVERIES.c.ordering_seq).where(
                    store.DELIVERIES.c.request_id.in_([r.request_id for r in rows])
                )
            ).all()
        )
    return [found[r.request_id] for r in rows]


def finish(engine, request_id: str, outcome: str = "delivered") -> None:
    claim = store.claim(engine, request_id, "w1", now=T0)
    assert claim is not None, f"{request_id} was not claimable"
    status = {"delivered": 200, "failed": 404, "retry_scheduled": 503}[outcome]
    next_at = T0 + timedelta(minutes=5) if outcome == "retry_scheduled" else None
    store.record_attempt(
        engine, attempt_record(claim, outcome, http_status=status, next_attempt_at=next_at), "w1"
    )


def test_a_key_is_numbered_in_dispatch_order_and_claimed_head_first(engine) -> None:
    first, second, third = ordered("enc-1"), ordered("enc-1"), ordered("enc-1")
    store.insert_deliveries(engine, [first, second], now=T0)
    store.insert_deliveries(engine, [third], now=T0)
    assert seqs(engine, [first, second, third]) == [1, 2, 3]

    claims = store.claim_many(engine, [third.request_id, second.request_id, first.request_id], "w1", now=T0)
    assert list(claims) == [first.request_id]  # only the head, however the jobs arrive
    assert store.claim(engine, second.request_id, "w2", now=T0) is None  # one at a time
    assert ordering.parked(engine, [second.request_id, third.request_id]) == {
        second.request_id: None,
        third.request_id: None,
    }
    store.record_attempt(engine, attempt_record(claims[first.request_id], "delivered"), "w1")
    assert [
        h.request_id for h in ordering.next_heads(engine, ordering.keys_of(engine, [first.request_id]))
    ] == [second.request_id]
    assert store.claim(engine, third.request_id, "w1", now=T0) is None
    assert store.claim(engine, second.request_id, "w1", now=T0) is not None


def test_a_head_waiting_for_its_retry_holds_only_its_own_key(engine) -> None:
    head, behind = ordered("enc-1"), ordered("enc-1")
    other_key, other_endpoint, unordered = (
        ordered("enc-2"),
        ordered("enc-1", endpoint="partner-b"),
        new_delivery(),
    )
    store.insert_deliveries(engine, [head, behind, other_key, other_endpoint, unordered], now=T0)
    finish(engine, head.request_id, "retry_scheduled")
    assert ordering.parked(engine, [behind.request_id]) == {behind.request_id: T0 + timedelta(minutes=5)}
    assert store.claim(engine, behind.request_id, "w1", now=T0) is None
    for free in (other_key, other_endpoint, unordered):
        assert store.claim(engine, free.request_id, "w1", now=T0) is not None
    finish(engine, head.request_id, "failed")  # a head that ends failed lets the next one go
    assert store.claim(engine, behind.request_id, "w1", now=T0) is not None


def test_a_retried_delivery_goes_to_the_back_of_its_key(engine) -> None:
    first, second = ordered("enc-1"), ordered("enc-1")
    store.insert_deliveries(engine, [first, second], now=T0)
    finish(engine, first.request_id, "failed")
    assert store.grant_retries(engine, [first.request_id], 5) == [first.request_id]
    assert seqs(engine, [first, second]) == [3, 2]
    assert store.claim(engine, first.request_id, "w1", now=T0) is None  # behind the second now
    finish(engine, second.request_id)
    assert store.claim(engine, first.request_id, "w1", now=T0) is not None


def test_heads_and_the_keys_waiting(engine) -> None:
    a1, a2, a3, b1, c1, c2 = (ordered(k) for k in ("a", "a", "a", "b", "c", "c"))
    store.insert_deliveries(engine, [a1, a2, a3, b1, c1, c2], now=T0)
    assert ordering.heads_among(engine, [a1.request_id, a2.request_id, b1.request_id, c2.request_id]) == {
        a1.request_id,
        b1.request_id,
    }
    report = ordering.waiting_keys(engine, ["partner-a", "partner-b"], T0 + timedelta(seconds=90))
    assert report["partner-a"] == {"keys_waiting": 2, "oldest_waiting_head_age_seconds": 90.0}
    assert report["partner-b"] == {"keys_waiting": 0, "oldest_waiting_head_age_seconds": None}


def test_an_unordered_delivery_is_claimed_as_before(engine) -> None:
    rows = [new_delivery() for _ in range(3)]
    store.insert_deliveries(engine, rows, now=T0)
    assert seqs(engine, rows) == [None, None, None]
    assert len(store.claim_many(engine, [r.request_id for r in rows], "w1", now=T0)) == 3


def test_dispatches_racing_on_one_key_are_numbered_once_each_in_commit_order(engine) -> None:
    """Eight threads, each inserting one delivery of the same key at once: the numbers are
    1..8, each once, whatever the backend."""
    rows = [ordered("hot") for _ in range(8)]
    start = threading.Barrier(len(rows))
    errors: list[BaseException] = []

    def insert(row: store.NewDelivery) -> None:
        try:
            start.wait()
            store.insert_deliveries(engine, [row], now=T0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=insert, args=(row,)) for row in rows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(seqs(engine, rows)) == list(range(1, 9))


def _plan(engine, statement) -> str:
    """The database's plan for ``statement`` (EXPLAIN only)."""
    compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.params
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            args = tuple(values[name] for name in compiled.positiontup)
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", args).all()
            return "\n".join(row[-1] for row in rows)
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a few test rows: make it choose
        return "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", values).all())


def test_the_claim_reads_only_the_pending_deliveries_of_a_key_not_its_history(engine) -> None:
    """A key lives as long as its encounter or patient: thousands of deliveries. Whether an
    earlier one is pending is read from the index of pending deliveries alone (a seek), not by
    walking the key's history (6 ms a claim at 10,000 deliveries, and growing)."""
    rows = [ordered("enc-1") for _ in range(3)]
    store.insert_deliveries(engine, rows, now=T0)
    condition = sa.select(store.DELIVERIES.c.request_id).where(
        store.DELIVERIES.c.request_id == rows[2].request_id, ordering.no_earlier_pending()
    )
    plan = _plan(engine, condition)
    assert "ix_webhook_deliveries_ordering_pending" in plan, plan
