"""The failures ``delivery.failed`` alerts count (``dispatcher/store/alert_failures.py``), on both
backends: failed attempt rows after a cursor (a row id) or written after a moment, a late row
stamped early still after the cursor, and an alert's cursor read back per endpoint."""

from __future__ import annotations

from datetime import timedelta

from dispatcher.store import alert_failures as alerts
from dispatcher.store import alerts as stored
from tests.store.test_alerts import NOW, add_delivery, add_failed_attempt


def test_failures_are_the_failed_attempt_rows_after_a_cursor_or_a_moment(engine) -> None:
    since = NOW - timedelta(minutes=15)
    add_delivery(engine, "edge-since", "failed", since)  # on the look-back's start: before it
    for i in range(25):
        add_delivery(engine, f"p{i:02}", "failed", since + timedelta(seconds=i + 1), reason="HTTP 500")
    add_delivery(engine, "lab-1", "failed", NOW, endpoint="lab")
    add_delivery(engine, "held", "failed", NOW - timedelta(minutes=1), reason="endpoint_disabled")
    add_delivery(engine, "fine", "delivered", NOW - timedelta(minutes=1))
    assert alerts.failing_endpoints(engine, since, None) == {"pharmacy", "lab"}
    group = alerts.failed_attempts(engine, "pharmacy", since=since)
    assert group is not None and group.count == 25
    assert group.request_ids == tuple(f"p{i:02}" for i in range(20))
    assert alerts.failed_attempts(engine, "pharmacy", after_id=group.upto) is None
    with engine.begin() as conn:  # written late, stamped long before: still after the cursor
        late = add_failed_attempt(conn, "late", "pharmacy", since - timedelta(hours=2))
    assert alerts.failing_endpoints(engine, NOW, group.upto) == {"pharmacy", "lab"}
    assert alerts.failed_attempts(engine, "pharmacy", after_id=group.upto) == alerts.FailedGroup(
        1, ("late",), late
    )


def test_each_endpoint_s_newest_cursor_is_where_its_next_alert_starts(engine) -> None:
    assert alerts.newest_cursors(engine, "delivery.failed") == {}
    for at, cursor, endpoint in (
        (NOW, 7, "pharmacy"),
        (NOW, 3, "lab"),
        (NOW + timedelta(minutes=15), 12, "pharmacy"),
    ):
        stored.raise_routed(
            engine, "delivery.failed", f"delivery.failed:{endpoint}:{cursor}", [], detail="d",
            endpoint=endpoint, at=at, cursor=cursor,
        )  # fmt: skip
    stored.raise_alert(engine, "queue.backlog", "queue.backlog:600s:after:0", detail="no cursor")
    assert alerts.newest_cursors(engine, "delivery.failed") == {"pharmacy": 12, "lab": 3}
