"""The storage doors (:class:`~dispatcher.ops.storage.Encrypt`, :class:`~dispatcher.ops.storage.Rotate`),
on SQLite and PostgreSQL: a plan needs storage keys, counts per column without writing, and
carrying it out seals what it counted and writes one audit row naming who asked."""

from __future__ import annotations

import pytest

from dispatcher import dispatch, store
from dispatcher.ops.door import Actor
from dispatcher.ops.storage import Encrypt, Rotate
from dispatcher.store import audit
from dispatcher.store.sealing import Keyring, new_key
from dispatcher.vocabulary import AuditAction
from tests.ops.test_phi_lifecycle import ENDPOINT, MESSAGE, finished, message, snapshot


@pytest.fixture
def plain_rows(make_runtime, database_url: str) -> list[str]:
    """Two final deliveries written before any storage key was set."""
    plain = make_runtime(database_url=database_url, endpoints=[ENDPOINT])
    ids = [dispatch("message_created", message(f"PAT-{n}"))[0] for n in range(2)]
    for request_id in ids:
        finished(plain.engine, request_id)
    plain.close()
    return ids


def test_a_plan_needs_storage_keys(make_runtime) -> None:
    runtime = make_runtime(endpoints=[ENDPOINT])
    with pytest.raises(ValueError, match="^no storage_keys are configured"):
        Encrypt().plan(runtime)


def test_the_plan_counts_per_column_and_writes_nothing(make_runtime, database_url, plain_rows) -> None:
    key = new_key()
    runtime = make_runtime(database_url=database_url, endpoints=[ENDPOINT], storage_keys=[key])
    before = snapshot(runtime.engine)

    plan = Encrypt().plan(runtime)

    assert snapshot(runtime.engine) == before
    key_id = Keyring([key]).key_ids[0]
    assert (plan.action, plan.count, plan.selection) == (AuditAction.STORAGE_ENCRYPT, 6, {"key_id": key_id})
    assert plan.details["webhook_deliveries.payload"] == 2
    assert plan.description.startswith(f"6 values to seal under storage key {key_id} (")
    assert Rotate().plan(runtime).count == 0
    preview = Encrypt().preview(runtime, Actor.cli(), plan)
    assert preview.dry_run and preview.to_do == dict(plan.details) and preview.sealed == {}
    assert snapshot(runtime.engine) == before  # a preview is not audited


def test_carrying_out_seals_and_writes_one_audit_row(make_runtime, database_url, plain_rows) -> None:
    runtime = make_runtime(database_url=database_url, endpoints=[ENDPOINT], storage_keys=[new_key()])
    door = Encrypt()

    report = door.carry_out(runtime, Actor.console("grace"), door.plan(runtime))

    assert sum(report.sealed.values()) == 6 and report.unreadable == [] and not report.dry_run
    assert door.plan(runtime).count == 0
    assert MESSAGE in store.get_delivery(runtime.engine, plain_rows[0])["payload"]
    (entry,) = audit.entries(runtime.engine)
    assert (entry.actor, entry.action) == ("grace", "storage encrypt")
    assert entry.selection == {"key_id": report.key_id, "via": "console"}
    assert entry.counts == {"to_do": 6, "sealed": 6, "unreadable": 0}
