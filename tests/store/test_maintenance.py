"""Deleting what the log no longer needs (dispatcher.store.maintenance), on both backends: final
deliveries of the statuses asked for, last updated before the cutoff, go with their attempts and
out of the counts; the rest, and a delivery re-opened since it was read, stay."""

from __future__ import annotations

from datetime import timedelta

from dispatcher import store
from tests.store.rows import T0, attempt_count, attempt_record, claimed, new_delivery

OLD = T0 - timedelta(days=40)
CUTOFF = T0 - timedelta(days=30)


def finished(engine, outcome: str, when=OLD) -> str:
    claim = claimed(engine)
    http_status = 200 if outcome == "delivered" else 404
    store.record_attempt(
        engine, attempt_record(claim, outcome, http_status=http_status, created_at=when), "w1"
    )
    return claim.request_id


def test_old_final_deliveries_go_with_their_attempts_and_out_of_the_counts(engine) -> None:
    delivered, failed = finished(engine, "delivered"), finished(engine, "failed")
    recent = finished(engine, "delivered", when=T0)
    queued = new_delivery()
    store.insert_deliveries(engine, [queued], now=OLD)  # still to be sent, however old
    ids = [delivered, failed, recent, queued.request_id]
    assert store.status_counts(engine)["delivered"] == 2

    assert store.delete_final(engine, ids, ["delivered", "failed", "queued"], CUTOFF) == (2, 2)

    assert store.existing_deliveries(engine, ids) == {recent, queued.request_id}
    assert attempt_count(engine, delivered) == attempt_count(engine, failed) == 0
    assert attempt_count(engine, recent) == 1
    assert store.status_counts(engine) == {
        "queued": 1,
        "in_flight": 0,
        "retrying": 0,
        "delivered": 1,
        "failed": 0,
    }


def test_only_the_statuses_asked_for_are_deleted(engine) -> None:
    delivered, failed = finished(engine, "delivered"), finished(engine, "failed")
    assert store.delete_final(engine, [delivered, failed], ["failed"], CUTOFF) == (1, 1)
    assert store.existing_deliveries(engine, [delivered, failed]) == {delivered}


def test_a_delivery_reopened_since_it_was_read_is_kept(engine) -> None:
    failed = finished(engine, "failed")
    assert store.grant_retry(engine, failed, max_attempts=3, now=OLD)  # dispatcher retry, meanwhile
    assert store.delete_final(engine, [failed], ["delivered", "failed"], CUTOFF) == (0, 0)
    assert store.get_delivery(engine, failed)["status"] == "queued" and attempt_count(engine, failed) == 1


def test_no_ids_or_no_final_status_deletes_nothing(engine) -> None:
    delivered = finished(engine, "delivered")
    assert store.delete_final(engine, [], ["delivered"], CUTOFF) == (0, 0)
    assert store.delete_final(engine, [delivered], ["queued", "retrying"], CUTOFF) == (0, 0)
    assert store.delete_final(engine, [delivered], ["delivered"], OLD) == (0, 0)  # not before the cutoff
    assert store.existing_deliveries(engine, [delivered]) == {delivered}
