"""The one door every operator action goes through (dispatcher.ops.door), against the real
SQLite and PostgreSQL: a plan reads only; carrying it out runs the writes and writes one audit
row with the actor, the action, the selection (with ``via`` for the console) and the outcome's
counts; ``record`` audits what is not a door the same way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher import store
from dispatcher.ops import audit
from dispatcher.ops.door import Actor, Door, Plan, record
from dispatcher.vocabulary import AuditAction, DeliveryStatus, Reason
from tests.store.rows import new_delivery


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(database_url=database_url)


@dataclass(frozen=True)
class Failed:
    failed: int
    request_ids: tuple[str, ...] = ()

    def counts(self) -> Mapping[str, Any]:
        return {"failed": self.failed}


class FailQueued(Door[Failed]):
    """An action for the test: fails every queued delivery to an endpoint."""

    action = AuditAction.RETRY

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.runs = 0

    def selection(self) -> store.Selection:
        return store.Selection(endpoint=self.endpoint, statuses=(DeliveryStatus.QUEUED,))

    def plan(self, runtime) -> Plan:
        count = store.count(runtime.engine, self.selection())
        return Plan(self.action, count, f"Fail {count} queued deliveries", {"endpoint": self.endpoint})

    def run(self, runtime, plan, progress=None) -> Failed:
        self.runs += 1
        ids = [r["request_id"] for r in store.list_deliveries(runtime.engine, self.selection(), limit=1000)]
        for request_id in ids:
            store.fail_delivery(runtime.engine, request_id, Reason.ENDPOINT_DISABLED)
        return Failed(len(ids), tuple(ids))


class FailQueuedNamingThem(FailQueued):
    def audit_selection(self, plan: Plan, outcome: Failed) -> Mapping[str, Any]:
        return {**plan.selection, "request_ids": list(outcome.request_ids)}


def snapshot(runtime) -> list[list[tuple]]:
    """Every row of every table."""
    with runtime.engine.connect() as conn:
        return [
            sorted(conn.execute(sa.select(table)).all(), key=repr) for table in store.METADATA.sorted_tables
        ]


def queued(runtime, n: int, endpoint: str = "partner-a") -> list[str]:
    rows = [new_delivery(endpoint=endpoint) for _ in range(n)]
    store.insert_deliveries(runtime.engine, rows)
    return [r.request_id for r in rows]


def test_a_plan_reads_only(runtime) -> None:
    queued(runtime, 2)
    queued(runtime, 1, endpoint="partner-b")
    before = snapshot(runtime)
    plan = FailQueued("partner-a").plan(runtime)
    assert (plan.action, plan.count, plan.description) == ("retry", 2, "Fail 2 queued deliveries")
    assert (plan.selection, plan.notes, plan.details) == ({"endpoint": "partner-a"}, (), {})
    assert snapshot(runtime) == before and audit.entries(runtime.engine) == []


def test_carrying_out_runs_the_plan_and_writes_one_audit_row(runtime) -> None:
    ids = queued(runtime, 2)
    door = FailQueued("partner-a")
    plan = door.plan(runtime)
    outcome = door.carry_out(runtime, Actor.cli(), plan)
    assert outcome == Failed(2, tuple(outcome.request_ids)) and door.runs == 1
    assert {store.get_delivery(runtime.engine, i)["status"] for i in ids} == {"failed"}
    (entry,) = audit.entries(runtime.engine)
    assert (entry.actor, entry.action, entry.selection, entry.counts) == (
        audit.os_actor(),
        "retry",
        {"endpoint": "partner-a"},  # the CLI's rows carry no via
        {"failed": 2},
    )


def test_the_console_is_named_in_the_row_and_a_fresh_plan_is_made_when_none_is_given(runtime) -> None:
    queued(runtime, 1)
    outcome = FailQueued("partner-a").carry_out(runtime, Actor.console("grace"))
    assert outcome.failed == 1
    (entry,) = audit.entries(runtime.engine)
    assert (entry.actor, entry.selection, entry.counts) == (
        "grace",
        {"endpoint": "partner-a", "via": "console"},
        {"failed": 1},
    )


def test_a_door_may_audit_what_its_run_learnt(runtime) -> None:
    ids = queued(runtime, 2)
    FailQueuedNamingThem("partner-a").carry_out(runtime, Actor("ops-bot", "api"))
    (entry,) = audit.entries(runtime.engine)
    assert entry.actor == "ops-bot"
    assert sorted(entry.selection.pop("request_ids")) == sorted(ids)
    assert entry.selection == {"endpoint": "partner-a", "via": "api"}


def test_record_audits_what_is_not_a_door_with_via(runtime) -> None:
    record(runtime, Actor.console("ada"), AuditAction.DELIVERY_REVEAL, {"request_id": "r-1"}, {"revealed": 1})
    record(runtime, Actor("cron"), AuditAction.LOG_EXPORT, {"kind": "deliveries"}, {"rows": 0})
    first, second = audit.entries(runtime.engine)
    assert (first.actor, first.action, first.selection, first.counts) == (
        "ada",
        "delivery reveal",
        {"request_id": "r-1", "via": "console"},
        {"revealed": 1},
    )
    assert (second.actor, second.action, second.selection) == ("cron", "log export", {"kind": "deliveries"})


def test_the_actors() -> None:
    assert Actor.cli() == Actor(audit.os_actor(), None)
    assert Actor.console("grace") == Actor("grace", "console")
