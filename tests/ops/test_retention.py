"""The :class:`~dispatcher.ops.retention.RetentionRun` door, on SQLite and PostgreSQL: its plan
counts without writing, a dry run's preview is not audited while a run with nothing to do is,
and carrying it out applies the policy and writes one audit row naming who asked."""

from __future__ import annotations

import pytest

from dispatcher import dispatch, store
from dispatcher.ops.door import Actor
from dispatcher.ops.retention import RetentionRun
from dispatcher.store import audit
from dispatcher.vocabulary import AuditAction
from tests.ops.test_phi_lifecycle import ENDPOINT, finished, message, snapshot

RULES = {"payload_days": 30, "rows_days": 90}


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(database_url=database_url, endpoints=[ENDPOINT], retention=RULES)


def aged_deliveries(engine) -> tuple[str, str, str]:
    """Final deliveries last updated 5, 40 and 100 days ago."""
    ids = tuple(dispatch("message_created", message(f"PAT-{n}"))[0] for n in range(3))
    for request_id, days in zip(ids, (5, 40, 100), strict=True):
        finished(engine, request_id, days_ago=days)
    return ids


def test_the_door_is_the_configured_policy(runtime) -> None:
    door = RetentionRun.configured(runtime.settings)
    assert (door.payload_days, door.rows_days) == (30, 90)
    assert door.idempotency_ttl == runtime.settings.idempotency_ttl_seconds


def test_the_plan_counts_and_writes_nothing(runtime) -> None:
    aged_deliveries(runtime.engine)
    before = snapshot(runtime.engine)

    door = RetentionRun.configured(runtime.settings)
    plan = door.plan(runtime)

    assert snapshot(runtime.engine) == before
    assert (plan.action, plan.count, plan.selection) == (AuditAction.RETENTION_RUN, 3, RULES)
    assert dict(plan.details) == {"to_erase": 2, "to_delete": 1, "idempotency_keys_to_delete": 0}
    assert plan.description == (
        "2 deliveries final over 30 days old to erase; 1 delivery final over 90 days old to delete; "
        "0 idempotency keys past idempotency_ttl to delete"
    )
    assert not door.nothing_to_do(plan)


def test_a_dry_run_is_not_audited_and_nothing_to_do_is(runtime) -> None:
    door = RetentionRun.configured(runtime.settings)
    plan = door.plan(runtime)
    assert door.nothing_to_do(plan)

    dry = door.preview(runtime, Actor.cli(), plan, dry_run=True)
    assert dry.dry_run and audit.entries(runtime.engine) == []
    idle = door.preview(runtime, Actor.console("grace"), plan, dry_run=False)
    assert not idle.dry_run
    (entry,) = audit.entries(runtime.engine)
    assert (entry.actor, entry.action, entry.selection) == (
        "grace",
        "retention run",
        {**RULES, "via": "console"},
    )


def test_carrying_out_applies_the_policy_and_writes_one_audit_row(runtime) -> None:
    engine = runtime.engine
    young, old, ancient = aged_deliveries(engine)
    door = RetentionRun.configured(runtime.settings)

    report = door.carry_out(runtime, Actor.cli(), door.plan(runtime))

    assert (report.erased, report.deleted, report.finished) == (1, 1, True)
    assert store.get_delivery(engine, ancient) is None
    assert store.get_delivery(engine, old)["payload"] is None
    assert store.get_delivery(engine, young)["payload"] is not None
    (entry,) = audit.entries(engine)
    assert (entry.actor, entry.action, entry.selection) == (Actor.cli().name, "retention run", RULES)
    assert entry.counts == report.counts() and entry.counts["erased"] == 1


def test_retention_unlinks_erased_and_deleted_deliveries_from_their_business_ids(
    make_runtime, database_url: str
) -> None:
    from tests.intake.test_dispatch_search import SEARCH_KEY, found

    runtime = make_runtime(
        database_url=database_url, endpoints=[ENDPOINT], retention=RULES, search_key=SEARCH_KEY
    )
    young, old, ancient = aged_deliveries(runtime.engine)
    door = RetentionRun.configured(runtime.settings)

    report = door.carry_out(runtime, Actor.cli(), door.plan(runtime))

    assert (report.erased, report.deleted) == (1, 1)
    assert found(runtime, "PAT-0") == {young}
    assert found(runtime, "PAT-1") == found(runtime, "PAT-2") == set()
    assert found(runtime, "ENC-1") == {young}
