"""Pacing a stream of events at a rate (dispatcher.ops.simulate.pacing): rates read in every
spelling, bad ones refused, events spread at the rate on an injected clock (a late one does not
shift the schedule; Ctrl-C ends the run), and the planned count and the simulated clock's start."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatcher.ops import simulate


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("5/s", 5), ("5", 5), ("300/m", 5), ("0.5/s", 0.5), ("7200/h", 2), ("20 / s", 20)],
)
def test_parse_rate(text, per_second):
    assert simulate.parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("bad", ["", "fast", "0", "-1/s", "5/d", "5/s/s"])
def test_bad_rate_is_refused(bad):
    with pytest.raises(ValueError):
        simulate.parse_rate(bad)


def test_pacing_spreads_events_at_the_rate():
    now = [0.0]
    sent_at: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def send(event: str, data: dict) -> int:
        sent_at.append(now[0])
        return 2

    summary = simulate.run(
        simulate.generate(1), rate=4, count=8, send=send, clock=lambda: now[0], sleep=sleep
    )
    assert sent_at == pytest.approx([i / 4 for i in range(8)])
    assert summary.events == 8 and summary.deliveries == 16
    assert summary.elapsed_seconds == pytest.approx(2.0)  # the run lasts rate x duration
    assert summary.achieved_rate == pytest.approx(4.0)
    assert sum(summary.by_event.values()) == 8


def test_a_late_send_does_not_shift_the_schedule_and_ctrl_c_ends_the_run() -> None:
    now = [0.0]
    sent_at: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def send(event: str, data: dict) -> int:
        sent_at.append(now[0])
        if len(sent_at) == 2:
            now[0] += 1.0  # a slow dispatch: the next events go out at once until caught up
        if len(sent_at) == 6:
            raise KeyboardInterrupt
        return 1

    events = iter([("order_changed", {})] * 100)
    summary = simulate.run(events, rate=4, count=10, send=send, clock=lambda: now[0], sleep=sleep)
    assert sent_at == pytest.approx([0.0, 0.25, 1.25, 1.25, 1.25, 1.25])
    assert summary.interrupted and summary.events == 5 and summary.deliveries == 5
    assert summary.as_dict() == {
        "events": 5,
        "planned_events": 10,
        "events_by_type": {"order_changed": 5},
        "deliveries": 5,
        "elapsed_seconds": 1.25,
        "target_rate": 4.0,
        "achieved_rate": 4.0,
        "seed": None,
        "dry_run": False,
        "interrupted": True,
    }


def test_without_pacing_nothing_waits_and_a_short_stream_ends_the_run() -> None:
    def never(seconds: float) -> None:
        raise AssertionError("slept")

    stream = [("order_changed", {}), ("message_created", {})]
    summary = simulate.run(
        stream, rate=1, count=5, send=lambda e, d: 3, pace=False, clock=lambda: 0.0, sleep=never
    )
    assert (summary.events, summary.deliveries, summary.planned) == (2, 6, 5)
    assert summary.achieved_rate == 0.0  # no time passed


def test_planned_events_and_the_simulated_clocks_start() -> None:
    assert simulate.planned_events(20, 1.5) == 30
    assert simulate.planned_events(0.1, 1) == 1  # at least one
    assert simulate.start_for(7) == simulate.SIM_EPOCH  # a seed: reproducible
    now = datetime(2026, 12, 7, 12, 0, 5, 123456, tzinfo=UTC)
    assert simulate.start_for(None, now) == now.replace(microsecond=0)
