"""``dispatcher log erase`` in-process (click's runner) against the real Redis, on SQLite and
PostgreSQL: by patient (through the keys' index, no payload opened) and by request id, naming
what it cannot erase, with no PHI in the audit trail."""

from __future__ import annotations

import json

from dispatcher import dispatch, store
from dispatcher.store import audit
from tests.cli.helpers import invoke
from tests.ops.test_phi_lifecycle import MESSAGE, finished, message


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
