"""``dispatcher retention run`` in-process (click's runner) against the real Redis, on SQLite and
PostgreSQL: old payloads erased, old rows deleted, pending deliveries left alone, one audit row."""

from __future__ import annotations

import json

from dispatcher import dispatch, store
from dispatcher.store import audit
from tests.cli.helpers import invoke
from tests.ops.test_phi_lifecycle import MESSAGE, aged, finished, message


def test_retention_run_erases_old_payloads_deletes_old_rows_and_leaves_pending_alone(runtime) -> None:
    engine = runtime.engine
    ids = [dispatch("message_created", message(f"PAT-{n}"))[0] for n in range(5)]
    young, old, ancient, old_failed, pending_old = ids
    finished(engine, young, days_ago=5)
    finished(engine, old, days_ago=40)
    finished(engine, ancient, days_ago=100)
    finished(engine, old_failed, "failed", days_ago=31)
    aged(engine, pending_old, 200)  # still queued: never touched

    dry = invoke("retention", "run", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert (planned["to_erase"], planned["to_delete"], planned["dry_run"]) == (3, 1, True)
    assert audit.entries(engine) == []  # a dry run changes nothing and reveals no PHI

    result = invoke("retention", "run", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["deleted"], report["attempts_deleted"]) == (1, 1)
    assert (report["erased"], report["attempts_erased"]) == (2, 2)  # the 100-day one was deleted first
    assert store.get_delivery(engine, ancient) is None
    for request_id in (old, old_failed):
        delivery = store.get_delivery(engine, request_id)
        assert delivery["payload"] is None and delivery["payload_erased_at"] is not None
        assert [a["response_body"] for a in store.list_attempts(engine, request_id)] == [None]
    assert MESSAGE in store.get_delivery(engine, young)["payload"]
    assert store.get_delivery(engine, pending_old)["status"] == "queued"
    assert MESSAGE in store.get_delivery(engine, pending_old)["payload"]
    (entry,) = audit.entries(engine)
    assert (entry.action, entry.selection) == ("retention run", {"payload_days": 30, "rows_days": 90})
    assert entry.counts["erased"] == 2 and entry.counts["deleted"] == 1

    again = invoke("retention", "run")
    assert "nothing to do" in again.output
