"""Endpoint state in the log (dispatcher.store.endpoints), on both backends: disabling and
enabling say whether they changed anything, failures without success are counted in a window,
what a disabled endpoint held back is listed oldest first, the deliveries that ended in a window
give the success rate per delivery, and the cache re-reads after its time or when told; an
endpoint's pending and waiting deliveries (in dispatch order, a retry in its backoff left out
when asked), failing those waiting when it is removed, and forgetting its state."""

from __future__ import annotations

from datetime import timedelta

from dispatcher import store
from dispatcher.store import endpoints as states
from dispatcher.store.endpoints import FinalDeliveries, final_deliveries
from dispatcher.times import utcnow
from dispatcher.vocabulary import DeliveryStatus, Reason
from tests.store.rows import T0, attempt_record, claimed, new_delivery


def test_disabling_and_enabling_say_whether_they_changed_the_state(engine) -> None:
    assert store.disabled_endpoints(engine) == {} and store.endpoint_states(engine) == {}
    assert store.set_endpoint_disabled(engine, "partner-a", False) is False  # never disabled
    assert store.disable(engine, "partner-a", "HTTP 410 Gone") is True
    assert store.disable(engine, "partner-a", "again") is False
    assert store.disabled_endpoints(engine) == {"partner-a": "HTTP 410 Gone"}
    state = store.endpoint_states(engine)["partner-a"]
    assert state["disabled"] and state["reason"] == "HTTP 410 Gone"
    assert state["disabled_at"].utcoffset() == timedelta(0)

    assert store.enable(engine, "partner-a") is True
    assert store.enable(engine, "partner-a") is False
    assert store.disabled_endpoints(engine) == {}
    state = store.endpoint_states(engine)["partner-a"]
    assert (bool(state["disabled"]), state["reason"], state["disabled_at"]) == (False, None, None)
    assert store.set_endpoint_disabled(engine, "partner-b", True, "maintenance") is True
    assert store.disabled_endpoints(engine) == {"partner-b": "maintenance"}


def finished(engine, outcome: str, endpoint: str = "partner-a", when=None) -> str:
    claim = claimed(engine, endpoint=endpoint)
    http_status = 200 if outcome == "delivered" else 404
    store.record_attempt(
        engine, attempt_record(claim, outcome, http_status=http_status, created_at=when or utcnow()), "w1"
    )
    return claim.request_id


def test_failures_without_success_count_only_the_window_and_a_success_clears_them(engine) -> None:
    since = utcnow() - timedelta(minutes=10)
    finished(engine, "failed")
    finished(engine, "failed")
    finished(engine, "failed", when=since - timedelta(minutes=1))  # before the window
    finished(engine, "failed", endpoint="partner-b")  # another endpoint's
    held = new_delivery()
    store.insert_deliveries(
        engine,
        [
            store.NewDelivery(
                **{**held.__dict__, "status": DeliveryStatus.FAILED, "reason": Reason.ENDPOINT_DISABLED}
            )
        ],
    )  # held back by a disabled endpoint: not a failure of the partner's
    assert store.failures_without_success(engine, "partner-a", since) == 2
    assert store.failures_without_success(engine, "partner-c", since) == 0

    finished(engine, "delivered")
    assert store.failures_without_success(engine, "partner-a", since) == 0
    assert store.failures_without_success(engine, "partner-b", since) == 1


def retried_then(engine, outcome: str, endpoint: str = "partner-a", retries: int = 2) -> str:
    """A delivery that took ``retries`` retries (an attempt row each) before ``outcome``."""
    claim = claimed(engine, endpoint=endpoint)
    for _ in range(retries):
        store.record_attempt(
            engine, attempt_record(claim, "retry_scheduled", http_status=503, next_attempt_at=utcnow()), "w1"
        )
        claim = store.claim(engine, claim.request_id, "w1")
    http_status = 200 if outcome == "delivered" else 404
    store.record_attempt(engine, attempt_record(claim, outcome, http_status=http_status), "w1")
    return claim.request_id


def test_the_success_rate_counts_deliveries_that_ended_not_attempts(engine) -> None:
    since = utcnow() - timedelta(hours=24)
    retried_then(engine, "delivered", retries=3)  # four attempts, one delivery delivered
    retried_then(engine, "delivered", retries=0)
    retried_then(engine, "failed", retries=1)
    finished(engine, "delivered", when=since - timedelta(minutes=1))  # ended before the window
    finished(engine, "failed", endpoint="partner-b")
    retrying = claimed(engine)  # not ended: not counted
    store.record_attempt(
        engine, attempt_record(retrying, "retry_scheduled", http_status=503, next_attempt_at=utcnow()), "w1"
    )
    held = new_delivery()
    failed_held = {"status": DeliveryStatus.FAILED, "reason": Reason.ENDPOINT_DISABLED}
    store.insert_deliveries(engine, [store.NewDelivery(**{**held.__dict__, **failed_held})])

    ended = final_deliveries(engine, since)
    assert ended == {
        "partner-a": FinalDeliveries(delivered=2, failed=1),
        "partner-b": FinalDeliveries(delivered=0, failed=1),
    }
    assert ended["partner-a"].total == 3 and ended["partner-a"].success_rate == 2 / 3
    assert ended["partner-b"].success_rate == 0.0
    assert FinalDeliveries().success_rate is None


def test_held_back_lists_the_endpoints_disabled_failures_oldest_first(engine) -> None:
    def held(endpoint: str, minutes: int) -> str:
        row = new_delivery(endpoint=endpoint)
        failed = {"status": DeliveryStatus.FAILED, "reason": Reason.ENDPOINT_DISABLED}
        store.insert_deliveries(
            engine, [store.NewDelivery(**{**row.__dict__, **failed})], now=T0 + timedelta(minutes=minutes)
        )
        return row.request_id

    later, earlier = held("partner-a", 5), held("partner-a", 1)
    held("partner-b", 0)
    failed_by_partner = finished(engine, "failed")
    queued = new_delivery()
    store.insert_deliveries(engine, [queued])
    assert store.held_back(engine, "partner-a") == [earlier, later]
    assert failed_by_partner not in store.held_back(engine, "partner-a")
    assert store.held_back(engine, "partner-c") == []


def test_the_cache_rereads_after_its_time_or_when_invalidated(engine) -> None:
    cache = store.DisabledCache(engine, ttl=3600)
    assert cache.get() == {}
    store.disable(engine, "partner-a", "maintenance")
    assert cache.get() == {}  # read a moment ago: kept
    cache.invalidate()
    assert cache.get() == {"partner-a": "maintenance"}

    fresh = store.DisabledCache(engine, ttl=0)
    assert fresh.get() == {"partner-a": "maintenance"}
    store.enable(engine, "partner-a")
    assert fresh.get() == {}


def test_pending_and_waiting_deliveries_of_an_endpoint_in_dispatch_order(engine) -> None:
    rows = [new_delivery() for _ in range(3)]
    for minutes, row in zip((2, 0, 1), rows, strict=True):  # stored out of order
        store.insert_deliveries(engine, [row], now=T0 + timedelta(minutes=minutes))
    store.insert_deliveries(engine, [new_delivery(endpoint="partner-b")])
    held = claimed(engine)  # in flight: pending, not waiting
    later = claimed(engine)
    retry_at = utcnow() + timedelta(hours=1)
    store.record_attempt(
        engine, attempt_record(later, "retry_scheduled", http_status=503, next_attempt_at=retry_at), "w1"
    )
    in_order = [rows[1].request_id, rows[2].request_id, rows[0].request_id]

    assert states.pending_count(engine, "partner-a") == 5
    assert states.waiting_deliveries(engine, "partner-a")[:3] == in_order
    assert set(states.waiting_deliveries(engine, "partner-a")) == {*in_order, later.request_id}
    assert held.request_id not in states.waiting_deliveries(engine, "partner-a")
    assert (
        states.waiting_deliveries(engine, "partner-a", due_by=utcnow()) == in_order
    )  # the retry keeps its time
    assert states.waiting_deliveries(engine, "partner-a", due_by=retry_at)[-1] == later.request_id
    assert (
        states.pending_count(engine, "partner-c") == 0
        and states.waiting_deliveries(engine, "partner-c") == []
    )


def test_failing_the_waiting_deliveries_of_an_endpoint_keeps_the_counts_right(engine) -> None:
    waiting = [new_delivery() for _ in range(2)]
    store.insert_deliveries(engine, waiting)
    other = new_delivery(endpoint="partner-b")
    store.insert_deliveries(engine, [other])
    held = claimed(engine)
    done = finished(engine, "delivered")
    before = store.status_counts(engine)

    assert states.fail_waiting(engine, "partner-a", Reason.ENDPOINT_REMOVED) == 2
    assert states.fail_waiting(engine, "partner-a", Reason.ENDPOINT_REMOVED) == 0  # conditional

    for row in waiting:
        delivery = store.get_delivery(engine, row.request_id)
        assert (delivery["status"], delivery["reason"], delivery["attempts"]) == (
            "failed",
            "endpoint_removed",
            0,
        )
    assert store.get_delivery(engine, held.request_id)["status"] == DeliveryStatus.IN_FLIGHT  # its worker's
    assert store.get_delivery(engine, done)["status"] == DeliveryStatus.DELIVERED
    assert store.get_delivery(engine, other.request_id)["status"] == DeliveryStatus.QUEUED
    after = store.status_counts(engine)
    assert after["failed"] == before["failed"] + 2 and after["queued"] == before["queued"] - 2
    assert after["delivered"] == before["delivered"]


def test_forgetting_an_endpoints_state_lets_a_new_one_of_its_name_start_afresh(engine) -> None:
    assert states.set_endpoint_paused(engine, "partner-a", True) is True
    store.disable(engine, "partner-a", "HTTP 410 Gone")
    assert states.forget_endpoint_state(engine, "partner-a") is True
    assert states.forget_endpoint_state(engine, "partner-a") is False
    assert store.endpoint_states(engine) == {} and states.gate_states(engine) == ({}, frozenset())
