"""The :class:`~dispatcher.ops.prune.Prune` door, on SQLite and PostgreSQL: its plan counts by
status without writing, a preview deletes nothing and is not audited, and carrying it out
deletes the old final deliveries with their attempts and writes one audit row naming who asked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatcher import dispatch, store
from dispatcher.ops.door import Actor
from dispatcher.ops.prune import Prune
from dispatcher.store import audit
from dispatcher.times import format_utc, utcnow
from dispatcher.vocabulary import FINAL_STATUSES, AuditAction
from tests.ops.test_phi_lifecycle import ENDPOINT, aged, finished, message, snapshot


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(database_url=database_url, endpoints=[ENDPOINT])


def old_and_new(engine) -> dict[str, str]:
    """Four deliveries: delivered and failed 40 days ago, delivered yesterday, queued 40 days ago."""
    ids = dict(
        zip(
            ("delivered", "failed", "recent", "queued"),
            (dispatch("message_created", message())[0] for _ in range(4)),
            strict=True,
        )
    )
    finished(engine, ids["delivered"], days_ago=40)
    finished(engine, ids["failed"], "failed", days_ago=40)
    finished(engine, ids["recent"], days_ago=1)
    aged(engine, ids["queued"], 40)
    return ids


def test_the_plan_counts_by_status_and_writes_nothing(runtime) -> None:
    old_and_new(runtime.engine)
    cutoff = utcnow() - timedelta(days=30)
    before = snapshot(runtime.engine)

    plan = Prune(FINAL_STATUSES, cutoff).plan(runtime)

    assert snapshot(runtime.engine) == before
    assert (plan.action, plan.count, dict(plan.details)) == (
        AuditAction.PRUNE,
        2,
        {"delivered": 1, "failed": 1},
    )
    assert (
        plan.description == f"2 deliveries (delivered: 1, failed: 1) last updated before {format_utc(cutoff)}"
    )
    assert plan.selection == {"statuses": FINAL_STATUSES, "updated_before": cutoff}
    nothing = Prune(["failed", "queued"], utcnow() - timedelta(days=90)).plan(runtime)
    assert nothing.count == 0 and nothing.description.startswith("no deliveries (failed) last updated before")


def test_a_preview_deletes_nothing_and_is_not_audited(runtime) -> None:
    old_and_new(runtime.engine)
    door = Prune(FINAL_STATUSES, utcnow() - timedelta(days=30))
    before = snapshot(runtime.engine)

    report = door.preview(runtime, Actor.cli(), door.plan(runtime))

    assert report.dry_run and (report.matched, report.deleted) == (2, 0)
    assert snapshot(runtime.engine) == before


def test_carrying_out_deletes_old_final_deliveries_and_writes_one_audit_row(runtime) -> None:
    engine = runtime.engine
    ids = old_and_new(engine)
    cutoff = utcnow() - timedelta(days=30)
    door = Prune(["failed"], cutoff)

    report = door.carry_out(runtime, Actor.console("grace"), door.plan(runtime))

    assert (report.matched, report.deleted, report.attempts_deleted) == (1, 1, 1)
    assert store.get_delivery(engine, ids["failed"]) is None
    assert all(store.get_delivery(engine, ids[kept]) for kept in ("delivered", "recent", "queued"))
    (entry,) = audit.entries(engine)
    assert (entry.actor, entry.action) == ("grace", "prune")
    assert entry.selection == {"statuses": ["failed"], "updated_before": str(cutoff), "via": "console"}
    assert entry.counts == {"matched": 1, "deleted": 1, "attempts_deleted": 1}


def test_a_pruned_delivery_is_no_longer_found_by_its_business_ids(make_runtime, database_url: str) -> None:
    from tests.intake.test_dispatch_search import SEARCH_KEY, found

    runtime = make_runtime(database_url=database_url, endpoints=[ENDPOINT], search_key=SEARCH_KEY)
    old, recent = (dispatch("message_created", message("PAT-9"))[0] for _ in range(2))
    finished(runtime.engine, old, days_ago=40)
    finished(runtime.engine, recent, days_ago=1)
    door = Prune(["delivered"], utcnow() - timedelta(days=30))

    assert door.carry_out(runtime, Actor.cli(), door.plan(runtime)).deleted == 1

    assert found(runtime, "PAT-9") == found(runtime, "ENC-1") == {recent}
