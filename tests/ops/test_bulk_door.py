"""A door over a selection (``ops.bulk_door.BulkDoor``): its plan's audit selection is the
selection described, its preview lists what matches and writes nothing."""

from __future__ import annotations

from dispatcher import store
from dispatcher.ops import audit
from dispatcher.ops.bulk_door import BulkDoor
from dispatcher.ops.door import Actor, Plan
from dispatcher.ops.replay import ReplayReport
from dispatcher.vocabulary import AuditAction, DeliveryStatus

from .test_resend import EP_A, HOURS, NOW, seed, snapshot


class Counted(BulkDoor[ReplayReport]):
    """A door that only counts (its run does nothing)."""

    action = AuditAction.REPLAY

    def __init__(self, selection: store.Selection) -> None:
        self.selection = selection

    def plan(self, runtime) -> Plan:
        return self.planned(store.count(runtime.engine, self.selection), "Count them", notes=("none",))

    def report(self, matched, ids, *, dry_run) -> ReplayReport:
        return ReplayReport(matched=matched, dry_run=dry_run, ids=ids)

    def run(self, runtime, plan, progress=None) -> ReplayReport:
        return ReplayReport(matched=plan.count or 0, dry_run=False)


def test_a_bulk_doors_plan_and_preview_read_only(make_runtime):
    runtime = make_runtime()
    ids = seed(runtime.engine, 1, 2, status=DeliveryStatus.FAILED, created_at=NOW - HOURS)
    before = snapshot(runtime)
    door = Counted(store.Selection(endpoint=EP_A, statuses=(DeliveryStatus.FAILED,)))
    plan = door.plan(runtime)
    assert (plan.action, plan.count, plan.description, plan.notes) == ("replay", 2, "Count them", ("none",))
    assert plan.selection == {"endpoint": EP_A, "statuses": ("failed",)}
    preview = door.preview(runtime, Actor.cli(), plan)
    assert (preview.matched, preview.dry_run, preview.ids.items) == (2, True, ids)
    assert snapshot(runtime) == before and audit.entries(runtime.engine) == []
    assert not door.nothing_to_do(plan)
    assert door.preview(runtime, Actor.cli(), plan, dry_run=False).dry_run is False  # nothing to do
