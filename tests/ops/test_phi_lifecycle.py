"""The PHI lifecycle through the CLI, in-process (click's runner) against the real Redis, on
SQLite and PostgreSQL: retention by age, erasure by request id and by patient, what retry and
replay say about an erased delivery, sealing rows already stored and rotating keys, the audit
trail of each action, and the worker applying retention on its own."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from dispatcher import dispatch, store
from dispatcher.cli import cli
from dispatcher.store import audit, erasure, resealing
from dispatcher.store.sealing import PREFIX, Keyring, check_key, new_key
from dispatcher.times import utcnow
from dispatcher.vocabulary import AuditAction
from dispatcher.worker import retention

ENDPOINT = {"name": "pharmacy", "url": "http://127.0.0.1:9/hook", "key": "pharmacy-key-1"}
MESSAGE = "Take 20 mg of Lisinopril with breakfast"


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def message(patient: str = "PAT-1", encounter: str = "ENC-1") -> dict:
    return {
        "patient_id": patient,
        "encounter_id": encounter,
        "author_id": "DR-1",
        "is_doctor": True,
        "channel": "patient",
        "message": f"{MESSAGE} ({patient}/{encounter})",
        "attachment": [],
        "created_at": "2026-12-01T09:00:00Z",
    }


def finished(engine, request_id: str, status: str = "delivered", days_ago: float = 0) -> None:
    """Moves a dispatched delivery to a final status, last updated ``days_ago``."""
    claim = store.claim(engine, request_id, "w1")
    record = store.AttemptRecord(
        request_id=request_id,
        event=claim.event,
        endpoint=claim.endpoint,
        url=claim.url,
        attempt=claim.attempt,
        outcome=status,
        http_status=200 if status == "delivered" else 404,
        error=None,
        response_body=f"echo {MESSAGE}",
        duration_ms=10,
        next_attempt_at=None,
        request_payload=claim.payload,
        request_headers={"X-Webhook-Key": "[redacted]"},
        created_at=utcnow(),
    )
    store.record_attempt(engine, record, "w1")
    aged(engine, request_id, days_ago)


def aged(engine, request_id: str, days_ago: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id == request_id)
            .values(updated_at=utcnow() - timedelta(days=days_ago))
        )


def snapshot(engine) -> list[list[tuple]]:
    """Every row of every table: what a plan must leave as it found it."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        return [
            [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
            for table in store.METADATA.sorted_tables
        ]


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(
        database_url=database_url,
        endpoints=[ENDPOINT],
        retention={"payload_days": 30, "rows_days": 90},
    )


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


def test_erase_by_patient_finds_every_delivery_without_opening_payloads(runtime) -> None:
    engine = runtime.engine
    first = dispatch("message_created", message("PAT-7", "ENC-1"))[0]
    second = dispatch("message_created", message("PAT-7", "ENC-2"))[0]
    pending = dispatch("message_created", message("PAT-7", "ENC-2"))[0]
    other = dispatch("message_created", message("PAT-8", "ENC-2"))[0]
    for request_id in (first, second, other):
        finished(engine, request_id)

    dry = invoke("log", "erase", "--patient-id", "PAT-7", "--encounter-id", "ENC-2", "--dry-run")
    assert dry.exit_code == 1  # the pending one is reported
    assert f"{second}: would be erased" in dry.output
    assert f"{pending}: left alone, still to be sent" in dry.output
    assert MESSAGE in store.get_delivery(engine, second)["payload"]

    result = invoke("log", "erase", "--patient-id", "PAT-7", "--yes", "--json")
    report = json.loads(result.stdout)
    assert sorted(report["request_ids"]) == sorted([first, second])
    assert report["erased"] == 2 and report["pending"] == [pending]
    assert store.get_delivery(engine, first)["payload"] is None
    assert MESSAGE in store.get_delivery(engine, other)["payload"]
    entries = audit.entries(engine)
    assert [e.action for e in entries] == ["log erase", "log erase"]
    assert entries[0].selection["dry_run"] is True
    assert "PAT-7" not in json.dumps([e.as_dict() for e in entries], default=str)  # no PHI in the audit
    assert entries[1].selection == {"patient_key": runtime.keyring.index("PAT-7")}
    assert entries[1].counts["erased"] == 2


def test_erase_by_request_id_names_what_it_cannot_erase(runtime) -> None:
    engine = runtime.engine
    done = dispatch("message_created", message())[0]
    finished(engine, done, "failed")
    missing = "00000000-0000-4000-8000-000000000404"
    result = invoke("log", "erase", done, missing, "--yes")
    assert result.exit_code == 1
    assert "erased the PHI of 1 delivery (1 attempt)" in result.stdout
    assert f"{missing}: no such delivery" in result.stderr
    again = invoke("log", "erase", done, "--yes")
    assert f"{done}: already erased" in again.stderr


def test_retry_and_replay_say_an_erased_delivery_cannot_be_sent(runtime) -> None:
    engine = runtime.engine
    request_id = dispatch("message_created", message())[0]
    finished(engine, request_id, "failed")
    erasure.erase(engine, [request_id], utcnow())

    retry = invoke("retry", request_id)
    assert retry.exit_code == 1
    assert (
        retry.stderr.strip()
        == f"{request_id}: cannot be re-sent, its payload was erased (retention or log erase)"
    )
    bulk = invoke("retry", "--failed", "--yes")
    assert "1 failed delivery whose payload was erased cannot be re-sent; left alone" in bulk.stderr
    assert "no failed deliveries match" in bulk.stdout
    replay = invoke("replay", "--since", "1h", "--endpoint", "pharmacy", "--yes")
    assert replay.exit_code == 1
    assert f"{request_id}: not replayed: its payload was erased (retention or log erase)" in replay.stderr
    assert store.get_delivery(engine, request_id)["status"] == "failed"
    shown = json.loads(invoke("log", "show", request_id, "--json").stdout)
    assert shown["payload"] is None and shown["payload_erased_at"] is not None
    assert "erased" in shown["payload_note"]


def test_storage_encrypt_then_rotate_through_the_cli(make_runtime, database_url: str) -> None:
    plain = make_runtime(database_url=database_url, endpoints=[ENDPOINT])
    ids = [dispatch("message_created", message(f"PAT-{n}"))[0] for n in range(3)]
    for request_id in ids:
        finished(plain.engine, request_id)
    plain.close()

    first = invoke("keys", "generate", "--storage").stdout.strip()
    assert len(check_key(first)) == 32
    sealed = make_runtime(database_url=database_url, endpoints=[ENDPOINT], storage_keys=[first])
    report = json.loads(invoke("storage", "encrypt", "--json").stdout)
    assert sum(report["sealed"].values()) == 9 and report["unreadable"] == []
    assert all(v.startswith(f"{PREFIX}{Keyring([first]).key_ids[0]}:") for v in raw_phi(sealed.engine))
    assert "nothing to do" in invoke("storage", "encrypt").stdout
    sealed.close()

    second = new_key()
    rotating = make_runtime(database_url=database_url, endpoints=[ENDPOINT], storage_keys=[second, first])
    assert (
        json.loads(invoke("storage", "rotate", "--dry-run", "--json").stdout)["to_do"][
            "webhook_deliveries.payload"
        ]
        == 3
    )
    rotated = invoke("storage", "rotate")
    assert rotated.exit_code == 0 and "sealed 9 values under storage key" in rotated.stdout
    assert [e.action for e in audit.entries(rotating.engine)] == ["storage encrypt", "storage rotate"]
    rotating.close()

    only_new = make_runtime(database_url=database_url, endpoints=[ENDPOINT], storage_keys=[second])
    assert MESSAGE in store.get_delivery(only_new.engine, ids[0])["payload"]
    assert [
        d.request_id
        for d in erasure.patient_deliveries(only_new.engine, only_new.keyring.candidates("PAT-1"))
    ] == [ids[1]]


def raw_phi(engine) -> list[str]:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return [
            v
            for table, column, _ in resealing.COLUMNS
            for (v,) in conn.execute(sa.select(sa.type_coerce(table.c[column], sa.String())))
            if v is not None
        ]


def test_storage_commands_need_keys(runtime) -> None:
    result = invoke("storage", "encrypt")
    assert result.exit_code == 2
    assert "no storage_keys are configured" in result.stderr


def test_every_operator_action_is_audited_and_listed(runtime) -> None:
    engine = runtime.engine
    request_id = dispatch("message_created", message())[0]
    finished(engine, request_id, "failed", days_ago=2)
    assert invoke("retry", request_id).exit_code == 0
    finished(engine, request_id, "failed", days_ago=2)
    assert invoke("retry", "--failed", "--yes").exit_code == 0
    finished(engine, request_id, "failed", days_ago=2)
    assert invoke("replay", "--since", "1d", "--endpoint", "pharmacy", "--yes").exit_code == 0
    assert invoke("endpoints", "disable", "pharmacy").exit_code == 0
    assert invoke("endpoints", "enable", "pharmacy", "--no-resend").exit_code == 0
    assert invoke("prune", "--older-than", "1d", "--yes").exit_code == 0
    assert invoke("log", "export", "--rows", "deliveries").exit_code == 0
    listed = json.loads(invoke("audit", "list", "--json").stdout)
    assert [e["action"] for e in listed] == [
        "retry",
        "retry",
        "replay",
        "endpoints disable",
        "endpoints enable",
        "prune",
        "log export",
    ]
    assert {e["actor"] for e in listed} == {listed[0]["actor"]} and listed[0]["actor"]
    assert listed[0]["selection"] == {"request_ids": [request_id]}
    assert listed[5]["counts"]["deleted"] == 1
    assert MESSAGE not in json.dumps(listed)
    table = invoke("audit", "list", "--since", "1h")
    assert "endpoints disable" in table.stdout and "who" in table.stdout


def test_the_worker_applies_retention_once_an_hour_one_worker_at_a_time(runtime, redis_client) -> None:
    engine = runtime.engine
    ids = [dispatch("message_created", message(f"PAT-{n}"))[0] for n in range(3)]
    for request_id in ids:
        finished(engine, request_id, days_ago=45)
    report = retention.apply_if_due(runtime)
    assert report is not None and report.erased == 3 and report.finished
    assert redis_client.ttl(retention.DUE_KEY) > 3500
    assert retention.apply_if_due(runtime) is None  # done this hour, by this worker or another
    (entry,) = audit.entries(engine)
    assert (entry.actor, entry.action) == ("worker test-worker", AuditAction.RETENTION_RUN)
    assert entry.selection == {"payload_days": 30, "rows_days": 90}

    redis_client.delete(retention.DUE_KEY)
    more = [dispatch("message_created", message())[0] for _ in range(3)]
    for request_id in more:
        finished(engine, request_id, days_ago=45)
    cut = retention.apply(engine, 30, None, budget_seconds=0, batch=1)  # a round out of time
    assert cut.erased == 1 and not cut.finished
    assert retention.apply_if_due(runtime).erased == 2


def test_a_round_out_of_time_stops_after_a_batch_of_old_rows(runtime) -> None:
    engine = runtime.engine
    ids = [dispatch("message_created", message(f"PAT-{n}"))[0] for n in range(3)]
    for request_id in ids:
        finished(engine, request_id, days_ago=100)
    cut = retention.apply(engine, 30, 90, budget_seconds=0, batch=1)
    assert (cut.deleted, cut.erased, cut.finished) == (1, 0, False)  # rows first; payloads wait
    rest = retention.apply(engine, 30, 90)
    assert (rest.deleted, rest.finished) == (2, True)
    assert [store.get_delivery(engine, request_id) for request_id in ids] == [None, None, None]
