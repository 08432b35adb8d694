"""``retry --failed``, ``replay`` and ``prune`` as the real CLI (subprocesses) against the real
Redis, a real worker process and a real receiver: the re-sent deliveries actually arrive."""

from __future__ import annotations

import json

from dispatcher import store
from dispatcher.times import utcnow
from dispatcher.vocabulary import DeliveryStatus
from tests.cli.helpers import run_cli, sent_ids
from tests.conftest import wait_for
from tests.e2e.test_cli_e2e import status_of
from tests.servers import Answer

KEY = "resend-partner-key-789"


def test_retry_failed_re_delivers_every_failed_delivery(make_runtime, write_config, start_worker, receiver):
    receiver.script_all(Answer(status=400), 200)
    ep = {"name": "partner-a", "url": receiver.url, "key": KEY}
    runtime = make_runtime(endpoints=[ep])
    config = write_config(endpoints=[ep])
    start_worker(config)
    request_ids = [
        rid
        for _ in range(3)
        for rid in sent_ids(run_cli(config, "send", "order_changed", "--sample", "--json").stdout)
    ]
    for rid in request_ids:
        wait_for(lambda rid=rid: status_of(runtime, rid) == "failed", timeout=30, message=f"{rid} failed")

    dry = json.loads(run_cli(config, "retry", "--failed", "--dry-run", "--json").stdout)
    assert (
        dry["matched"] == 3 and dry["dry_run"] is True and sorted(dry["request_ids"]) == sorted(request_ids)
    )
    declined = run_cli(config, "retry", "--failed", check=False)  # stdin is not a terminal: no
    assert declined.returncode == 1 and "aborted; nothing was changed" in declined.stderr
    assert {status_of(runtime, rid) for rid in request_ids} == {"failed"}

    report = json.loads(run_cli(config, "retry", "--failed", "--yes", "--json").stdout)
    assert report["matched"] == 3 and report["requeued"] == 3 and report["dry_run"] is False
    assert sorted(report["request_ids"]) == sorted(request_ids)
    for rid in request_ids:
        wait_for(
            lambda rid=rid: status_of(runtime, rid) == "delivered", timeout=30, message=f"{rid} delivered"
        )
        got = receiver.for_request(rid)
        assert [g.body["metadata"]["retry"] for g in got] == [False, True]
        assert {g.body["metadata"]["request_id"] for g in got} == {rid}
        attempts = store.list_attempts(runtime.engine, rid)
        assert [(a["attempt"], a["outcome"], a["http_status"]) for a in attempts] == [
            (1, "failed", 400),
            (2, "delivered", 200),
        ]

    again = run_cli(config, "retry", "--failed", "--yes")
    assert "no failed deliveries match; nothing to re-queue" in again.stdout


def test_replay_re_sends_a_time_range_as_new_deliveries(make_runtime, write_config, start_worker, receiver):
    ep = {"name": "partner-a", "url": receiver.url, "key": KEY}
    runtime = make_runtime(endpoints=[ep])
    config = write_config(endpoints=[ep])
    start_worker(config)
    originals = [
        sent_ids(
            run_cli(config, "send", event, "--sample", "--dispatched-by", "e2e-origin", "--json").stdout
        )[0]
        for event in ("order_changed", "message_created")
    ]
    for rid in originals:
        wait_for(
            lambda rid=rid: status_of(runtime, rid) == "delivered", timeout=30, message=f"{rid} delivered"
        )
    first_bodies = {rid: receiver.for_request(rid)[0].body for rid in originals}

    dry = json.loads(
        run_cli(config, "replay", "--since", "1h", "--endpoint", "partner-a", "--dry-run", "--json").stdout
    )
    assert dry["matched"] == 2 and dry["replays"] == [] and len(receiver.received) == 2

    result = run_cli(config, "replay", "--since", "1h", "--endpoint", "partner-a", "--yes", "--json")
    report = json.loads(result.stdout)
    assert report["matched"] == 2 and report["replayed"] == 2 and report["skipped"] == []
    replays = {item["replay_of"]: item["request_id"] for item in report["replays"]}
    assert set(replays) == set(originals) and not set(replays.values()) & set(originals)
    for original, new in replays.items():
        wait_for(
            lambda new=new: status_of(runtime, new) == "delivered", timeout=30, message=f"{new} delivered"
        )
        (got,) = receiver.for_request(new)
        before = first_bodies[original]
        assert got.headers["X-Webhook-Key"] == KEY
        assert got.body["event"] == before["event"] and got.body["data"] == before["data"]
        assert got.body["metadata"]["request_id"] == new and got.body["metadata"]["retry"] is False
        assert got.body["metadata"]["dispatched_by"] == "e2e-origin"
        shown = json.loads(run_cli(config, "log", "show", new, "--json").stdout)
        assert shown["replay_of"] == original and shown["status"] == "delivered"
    assert len(receiver.for_request(originals[0])) == 1  # the originals were not sent again

    unknown = run_cli(config, "replay", "--since", "1h", "--endpoint", "nobody", "--yes", check=False)
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1
    assert "unknown endpoint 'nobody'" in unknown.stderr and "Traceback" not in unknown.stderr


def test_prune_and_the_progress_bar_on_a_terminal(make_runtime, write_config, receiver):
    ep = {"name": "partner-a", "url": receiver.url, "key": KEY}
    runtime = make_runtime(endpoints=[ep])
    config = write_config(endpoints=[ep])
    (old,) = sent_ids(run_cli(config, "send", "order_changed", "--sample", "--json").stdout)
    (fresh,) = sent_ids(run_cli(config, "send", "order_changed", "--sample", "--json").stdout)
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id.in_([old, fresh]))
            .values(status=DeliveryStatus.DELIVERED)
        )
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id == old)
            .values(updated_at=utcnow().replace(year=2020))
        )

    bad = run_cli(config, "prune", "--older-than", "soon", check=False)
    assert bad.returncode == 2 and "Invalid value for '--older-than'" in bad.stderr
    # TTY_COMPATIBLE=1 makes rich treat stderr as a terminal, so the bar is drawn there.
    result = run_cli(config, "prune", "--older-than", "30d", "--yes", env={"TTY_COMPATIBLE": "1"})
    assert "1 delivery (delivered: 1, failed: 0) last updated before" in result.stdout
    assert "deleted 1 delivery and 0 attempt rows" in result.stdout
    assert "pruning" in result.stderr and "1/1" in result.stderr
    assert status_of(runtime, old) is None and status_of(runtime, fresh) == "delivered"
