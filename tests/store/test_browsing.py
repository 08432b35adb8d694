"""Reading the log a screen at a time (dispatcher.store.browsing), on both backends: pages of
deliveries newest first from a keyset cursor, with each one's reason and latest failure kind;
the selected deliveries per status; and an endpoint's attempts per hour."""

from __future__ import annotations

from datetime import timedelta

from dispatcher import store
from dispatcher.store import browsing
from dispatcher.times import utcnow
from dispatcher.vocabulary import AttemptOutcome, FailureKind, Reason
from tests.store.rows import T0, attempt_record, claimed, new_delivery


def test_pages_run_newest_first_from_a_cursor_across_ties(engine) -> None:
    times = [T0, T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2), T0 + timedelta(seconds=3)]
    rows = [new_delivery(f"00000000-0000-4000-8000-{i:012d}") for i in range(len(times))]
    for row, when in zip(rows, times, strict=True):
        store.insert_deliveries(engine, [row], now=when)
    newest_first = [r.request_id for r in reversed(rows)]  # the tie is broken by request_id, descending

    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = browsing.newest_first(engine, store.Selection(), cursor, limit=2)
        seen += [r["request_id"] for r in page]
        pages += 1
        if cursor is None:
            break
        assert cursor == (page[-1]["created_at"], page[-1]["request_id"])
    assert seen == newest_first and pages == 3
    first, _ = browsing.newest_first(engine, store.Selection(), limit=2)
    assert set(first[0]) == set(browsing.LISTED_FIELDS) == {*store.DELIVERY_FIELDS, "reason", "last_failure"}
    assert first[0]["created_at"].utcoffset() == timedelta(0)


def test_a_page_that_holds_the_rest_has_no_cursor_and_a_selection_filters(engine) -> None:
    order, message = new_delivery(event="order_changed"), new_delivery(event="message_created")
    store.insert_deliveries(engine, [order], now=T0)
    store.insert_deliveries(engine, [message], now=T0 + timedelta(minutes=1))
    page, cursor = browsing.newest_first(engine, store.Selection(), limit=2)
    assert [r["request_id"] for r in page] == [message.request_id, order.request_id] and cursor is None
    page, cursor = browsing.newest_first(engine, store.Selection(event="order_changed"))
    assert [r["request_id"] for r in page] == [order.request_id] and cursor is None
    assert browsing.newest_first(engine, store.Selection(event="encounter_cancelled")) == ([], None)


def attempt_at(engine, endpoint: str, outcome: str, when) -> None:
    row = new_delivery(endpoint=endpoint)
    store.insert_deliveries(engine, [row], now=when)
    claim = store.claim(engine, row.request_id, "w1", now=when)
    http_status = 200 if outcome == "delivered" else 503
    store.record_attempt(
        engine,
        attempt_record(claim, outcome, http_status=http_status, next_attempt_at=None, created_at=when),
        "w1",
    )


def test_attempts_are_counted_per_endpoint_per_hour_of_the_window(engine) -> None:
    start, end = T0, T0 + timedelta(hours=3)
    attempt_at(engine, "partner-a", "delivered", start)
    attempt_at(engine, "partner-a", "retry_scheduled", start + timedelta(minutes=59, seconds=59))
    attempt_at(engine, "partner-a", "delivered", start + timedelta(hours=1))  # on the hour's edge
    attempt_at(engine, "partner-b", "retry_scheduled", start + timedelta(hours=2, minutes=30))
    attempt_at(engine, "partner-a", "delivered", start - timedelta(seconds=1))  # before the window
    attempt_at(engine, "partner-b", "delivered", end)  # the window's end is not in it

    hours = sorted(browsing.hourly_attempts(engine, start, end), key=lambda h: (h.endpoint, h.hour))
    assert hours == [
        browsing.HourlyAttempts("partner-a", 0, attempts=2, delivered=1),
        browsing.HourlyAttempts("partner-a", 1, attempts=1, delivered=1),
        browsing.HourlyAttempts("partner-b", 2, attempts=1, delivered=0),
    ]
    assert browsing.hourly_attempts(engine, end + timedelta(hours=1), end + timedelta(hours=2)) == []


def test_a_row_carries_its_reason_and_its_latest_attempts_failure_kind(engine) -> None:
    def attempt(claim, outcome: str, failure: str | None, http_status: int | None) -> None:
        """One attempt as a worker records it: a failed one with the reason the policy gives."""
        record = attempt_record(claim, outcome, http_status=http_status, next_attempt_at=utcnow())
        record = type(record)(**{**record.__dict__, "failure": failure})
        reason = f"{failure or f'HTTP {http_status}'}; attempts exhausted" if outcome == "failed" else None
        store.record_attempt(engine, record, "w1", reason)

    def again(claim):
        return store.claim(engine, claim.request_id, "w1")

    timed_out = claimed(engine)  # a 503, then a timeout: retrying after the timeout
    attempt(timed_out, AttemptOutcome.RETRY_SCHEDULED, None, 503)
    attempt(again(timed_out), AttemptOutcome.RETRY_SCHEDULED, FailureKind.TIMEOUT, None)
    answered = claimed(engine)  # a timeout, then a 503: the latest attempt got an answer
    attempt(answered, AttemptOutcome.RETRY_SCHEDULED, FailureKind.TIMEOUT, None)
    attempt(again(answered), AttemptOutcome.FAILED, None, 503)
    refused = claimed(engine)
    attempt(refused, AttemptOutcome.FAILED, FailureKind.DESTINATION_REFUSED, None)
    held = new_delivery()
    failed_held = {"status": "failed", "reason": Reason.ENDPOINT_DISABLED}
    store.insert_deliveries(engine, [store.NewDelivery(**{**held.__dict__, **failed_held})])
    rows = {r["request_id"]: r for r in browsing.newest_first(engine, store.Selection())[0]}
    seen = {rid: (r["status"], r["reason"], r["last_failure"]) for rid, r in rows.items()}
    assert seen == {
        timed_out.request_id: ("retrying", None, "timeout"),
        answered.request_id: ("failed", "HTTP 503; attempts exhausted", None),
        refused.request_id: ("failed", "destination_refused; attempts exhausted", "destination_refused"),
        held.request_id: ("failed", "endpoint_disabled", None),
    }


def test_status_counts_count_what_a_selection_selects(engine) -> None:
    for event, outcome in [
        ("order_changed", "delivered"),
        ("order_changed", "failed"),
        ("message_created", "failed"),
    ]:
        claim = claimed(engine, event=event)
        store.record_attempt(
            engine, attempt_record(claim, outcome, http_status=200 if outcome == "delivered" else 404), "w1"
        )
    store.insert_deliveries(engine, [new_delivery(event="order_changed")])  # queued
    everything = browsing.status_counts(engine, store.Selection())
    assert everything == {"queued": 1, "in_flight": 0, "retrying": 0, "delivered": 1, "failed": 2}
    assert everything == store.status_counts(engine)  # the kept counts, not the log
    assert browsing.status_counts(engine, store.Selection(event="order_changed")) == {
        "queued": 1, "in_flight": 0, "retrying": 0, "delivered": 1, "failed": 1,
    }  # fmt: skip
    assert browsing.status_counts(engine, store.Selection(endpoint="partner-b")) == dict.fromkeys(
        ("queued", "in_flight", "retrying", "delivered", "failed"), 0
    )
    later = store.Selection(since=utcnow() + timedelta(minutes=1))
    assert sum(browsing.status_counts(engine, later).values()) == 0
