"""Counts of deliveries by status without reading the log (dispatcher.store.counts), on both
backends: they stay exactly the rows through every path that moves a status."""

from __future__ import annotations

from datetime import timedelta

from dispatcher import store
from dispatcher.vocabulary import DeliveryStatus, Reason
from tests.store.rows import T0, attempt_record, new_delivery


def actual(engine) -> dict[str, int]:
    counted = dict.fromkeys(("queued", "in_flight", "retrying", "delivered", "failed"), 0)
    counted.update(store.count_by_status(engine, store.Selection()))
    return counted


def test_counts_follow_every_move(engine) -> None:
    rows = [new_delivery() for _ in range(8)]
    held = new_delivery("00000000-0000-4000-8000-00000000000f")
    store.insert_deliveries(engine, rows, now=T0)
    store.insert_deliveries(engine, [store.NewDelivery(**{**held.__dict__, "status": DeliveryStatus.FAILED, "reason": Reason.ENDPOINT_DISABLED})], now=T0)  # fmt: skip
    assert store.status_counts(engine) == actual(engine)

    claims = store.claim_many(engine, [r.request_id for r in rows[:6]], "w1", now=T0)
    batch = [
        (attempt_record(claims[rows[0].request_id], "delivered"), None),
        (attempt_record(claims[rows[1].request_id], "delivered"), None),
        (attempt_record(claims[rows[2].request_id], "failed", http_status=404), "HTTP 404 is not retried"),
        (
            attempt_record(
                claims[rows[3].request_id], "retry_scheduled", http_status=503, next_attempt_at=T0
            ),
            None,
        ),
    ]
    store.record_attempts(engine, batch, "w1")
    store.release_claim(engine, rows[4].request_id, "w1", fail_reason=Reason.ENDPOINT_DISABLED)
    store.release_claim(engine, rows[5].request_id, "w1")
    store.fail_delivery(engine, rows[6].request_id, "stored payload is unusable: ValueError")
    assert store.status_counts(engine) == actual(engine) == {
        "queued": 2, "in_flight": 0, "retrying": 1, "delivered": 2, "failed": 4,
    }  # fmt: skip

    reopened = store.grant_retries(engine, [rows[2].request_id, rows[0].request_id], 5)
    assert reopened == [rows[2].request_id]
    with engine.begin() as conn:  # everything final is old enough to prune
        conn.execute(store.DELIVERIES.update().values(updated_at=T0 - timedelta(days=60)))
    store.delete_final(engine, [r.request_id for r in rows], ["delivered", "failed"], T0 - timedelta(days=1))
    assert store.status_counts(engine) == actual(engine)


def test_counting_reads_only_the_unfinished_rows_and_the_counts(tmp_path) -> None:
    """SQLite's plan: the unfinished statuses through the status index, never a scan of the log."""
    engine = store.create_store_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    try:
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT status, count(*) FROM webhook_deliveries "
                "WHERE status IN ('queued', 'in_flight', 'retrying') GROUP BY status"
            ).all()
        details = " | ".join(str(row[-1]) for row in plan)
        assert "ix_webhook_deliveries_status" in details and "SCAN webhook_deliveries" not in details
    finally:
        engine.dispose()
