"""``dispatcher prune`` in-process (click's runner) against the real Redis, on SQLite and
PostgreSQL: old final deliveries go with their attempt rows, nothing else does, and a bad option
is a usage error. Its run over 100,000 rows is in test_resend.py; the door behind it in
tests/ops/test_prune.py."""

from __future__ import annotations

import json

from dispatcher.vocabulary import DeliveryStatus
from tests.cli.helpers import attempt_counts, invoke
from tests.ops.test_resend import HOURS, NOW, endpoints, seed, snapshot, statuses


def test_prune_deletes_old_final_deliveries_with_their_attempts_only(make_runtime, database_url):
    runtime = make_runtime(database_url=database_url, endpoints=endpoints("http://127.0.0.1:9/"))
    old, recent = NOW - 40 * 24 * HOURS, NOW - 24 * HOURS
    e = runtime.engine
    old_delivered = seed(e, 1, 3, status=DeliveryStatus.DELIVERED, created_at=old, attempt_rows=True)
    seed(e, 10, 2, status=DeliveryStatus.FAILED, created_at=old, attempt_rows=True)
    kept = (
        seed(e, 20, 2, status=DeliveryStatus.DELIVERED, created_at=old, updated_at=recent, attempt_rows=True)
        + seed(e, 30, 1, status=DeliveryStatus.QUEUED, created_at=old, attempt_rows=True)
        + seed(e, 40, 1, status=DeliveryStatus.RETRYING, created_at=old, attempt_rows=True)
        + seed(e, 50, 1, status=DeliveryStatus.IN_FLIGHT, created_at=old, attempt_rows=True)
    )
    before = snapshot(runtime)

    dry = json.loads(invoke("prune", "--older-than", "30d", "--dry-run", "--json").stdout)
    assert dry["matched"] == 5 and dry["deleted"] == 0 and dry["dry_run"] is True
    assert dry["matched_by_status"] == {"delivered": 3, "failed": 2}
    assert dry["statuses"] == ["delivered", "failed"] and dry["cutoff"].endswith("Z")
    declined = invoke("prune", "--older-than", "30d", input="n\n")
    assert declined.exit_code == 1 and "5 deliveries (delivered: 3, failed: 2)" in declined.stdout
    assert snapshot(runtime) == before

    only_failed = json.loads(
        invoke("prune", "--older-than", "30d", "--status", "failed", "--yes", "--json").stdout
    )
    assert only_failed["deleted"] == 2 and only_failed["attempts_deleted"] == 2
    assert only_failed["statuses"] == ["failed"] and only_failed["matched_by_status"] == {"failed": 2}
    assert set(statuses(runtime)) == set(old_delivered + kept)

    text = invoke("prune", "--older-than", "30d", "--yes")
    assert text.exit_code == 0 and "deleted 3 deliveries and 3 attempt rows" in text.stdout
    assert set(statuses(runtime)) == set(kept)
    assert set(attempt_counts(runtime)) == set(kept)

    everything_old = invoke("prune", "--older-than", "1h", "--yes", "--json")
    assert json.loads(everything_old.stdout)["deleted"] == 2  # the recently updated delivered ones
    assert sorted(statuses(runtime).values()) == ["in_flight", "queued", "retrying"]


def test_prune_bad_option_values_are_usage_errors(make_runtime):
    make_runtime()
    bad = invoke("prune", "--older-than", "a month")
    assert bad.exit_code == 2 and "Invalid value for '--older-than'" in bad.stderr
    assert "'a month' is neither an ISO 8601 time nor an age like 30m, 2h, 7d" in bad.stderr
    status = invoke("prune", "--older-than", "30d", "--status", "queued")
    assert status.exit_code == 2 and "'--status'" in status.stderr
    missing = invoke("prune")
    assert missing.exit_code == 2 and "'--older-than'" in missing.stderr
    nothing = invoke("prune", "--older-than", "30d", "--yes")
    assert nothing.exit_code == 0 and nothing.stdout.startswith("no deliveries (delivered, failed)")
    empty = json.loads(invoke("prune", "--older-than", "30d", "--json").stdout)
    assert empty["matched"] == 0 and empty["matched_by_status"] == {"delivered": 0, "failed": 0}
