"""The replay door (``ops.replay.Replay``): its range ends when it is asked for at the latest, its
plan writes nothing and refuses an unknown endpoint, carrying it out writes one audit row (the
command itself is tested in ``test_resend.py``)."""

from __future__ import annotations

import pytest

from dispatcher import store
from dispatcher.errors import UnknownEndpoint
from dispatcher.ops import audit
from dispatcher.ops.door import Actor
from dispatcher.ops.replay import Replay
from dispatcher.vocabulary import DeliveryStatus

from .test_resend import EP_A, HOURS, NOW, endpoints, queued_job_ids, seed, snapshot


def test_the_range_ends_now_at_the_latest():
    later = Replay(store.Selection(since=NOW - HOURS, until=NOW + HOURS), EP_A, now=NOW)
    assert later.until == NOW and later.selection.until == NOW and later.selection.endpoint == EP_A
    open_ended = Replay(store.Selection(since=NOW - HOURS), EP_A, now=NOW)
    assert open_ended.until == NOW
    earlier = Replay(store.Selection(since=NOW - 3 * HOURS, until=NOW - HOURS), EP_A, now=NOW)
    assert earlier.until == NOW - HOURS


def test_replay_door_plans_without_writing_and_audits_once(make_runtime, database_url):
    runtime = make_runtime(database_url=database_url, endpoints=endpoints("http://127.0.0.1:9/"))
    originals = seed(runtime.engine, 1, 2, status=DeliveryStatus.DELIVERED, created_at=NOW - HOURS)
    before = snapshot(runtime)

    door = Replay(store.Selection(since=NOW - 2 * HOURS), EP_A)
    plan = door.plan(runtime)
    assert (plan.action, plan.count) == ("replay", 2)
    assert plan.description == f"Send 2 deliveries again to {EP_A}, as new deliveries with new request ids"
    assert door.preview(runtime, Actor.cli(), plan).as_dict()["request_ids"] == originals
    assert snapshot(runtime) == before and audit.entries(runtime.engine) == []
    with pytest.raises(UnknownEndpoint):
        Replay(store.Selection(since=NOW - 2 * HOURS), "partner-z").plan(runtime)

    report = door.carry_out(runtime, Actor.console("olivia"), plan)
    assert report.replayed == 2 and len(queued_job_ids(runtime)) == 2
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.action) == ("olivia", "replay")
    assert (
        set(entry.selection) == {"endpoint", "since", "until", "via"} and entry.selection["via"] == "console"
    )
    assert entry.counts == {"matched": 2, "replayed": 2, "skipped": 0, "held_back": 0}
