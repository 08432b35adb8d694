"""Reading the log a screen at a time (dispatcher.store.browsing), on both backends: pages of
deliveries newest first from a keyset cursor, and an endpoint's attempts per hour."""

from __future__ import annotations

from datetime import timedelta

from dispatcher import store
from dispatcher.store import browsing
from tests.store.rows import T0, attempt_record, new_delivery


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
    assert set(first[0]) == set(store.DELIVERY_FIELDS)
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
