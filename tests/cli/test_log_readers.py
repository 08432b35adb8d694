"""Every reader reads whatever is stored: rows written by an older version (before the nesting
limit and the JSON checks at dispatch) go through ``log show`` (text and ``--json``) and
``log export`` without a traceback. The rows are inserted directly, as that version would have."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from click.testing import CliRunner

from dispatcher import store
from dispatcher.cli import cli
from dispatcher.contract import catalogue as events
from dispatcher.contract.wrapper import build
from dispatcher.ops.documents import READABLE_DEPTH
from dispatcher.times import utcnow
from dispatcher.vocabulary import AttemptOutcome, DeliveryStatus

URL = "http://127.0.0.1:9/a"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def payload_text(attachment_json: str) -> str:
    """A stored wrapper as an older version wrote it, its attachment given as raw JSON text."""
    data = events.CATALOGUE["message_created"].example()
    data["attachment"] = "@ATTACHMENT@"
    body = build(
        event="message_created",
        timestamp="2026-01-30T12:00:00Z",
        data=data,
        source="Baremeds",
        environment="test",
        request_id="old",
        dispatched_by="SYSTEM",
    )
    return json.dumps(body, separators=(",", ":")).replace('"@ATTACHMENT@"', attachment_json)


def insert_old_row(runtime, payload: str) -> str:
    """A failed delivery and its one attempt, both holding ``payload``, straight into the tables."""
    request_id = str(uuid.uuid4())
    now = utcnow()
    common = {"request_id": request_id, "event": "message_created", "endpoint": "partner-a", "url": URL}
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.insert().values(
                **common,
                status=DeliveryStatus.FAILED,
                attempts=1,
                attempt_limit=5,
                payload=payload,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            store.ATTEMPTS.insert().values(
                **common,
                attempt=1,
                retry=False,
                outcome=AttemptOutcome.FAILED,
                http_status=400,
                error="HTTP 400",
                duration_ms=12,
                request_payload=payload,
                request_headers="{}",
                created_at=now,
            )
        )
    return request_id


OLD_PAYLOADS = {
    "500-deep": ("[" * 500 + "]" * 500, f"nested more than {READABLE_DEPTH} levels deep"),
    "2000-deep": ("[" * 2000 + "]" * 2000, "cannot be parsed back (RecursionError"),
    "nan": ('[{"score":NaN}]', "payload.data.attachment[0].score: float nan is not a JSON number"),
    "infinity": ("[Infinity]", "float inf is not a JSON number"),
    "5000-digit-integer": ("[" + "7" * 5000 + "]", "cannot be parsed back (ValueError: Exceeds the limit"),
    "escaped-surrogate": ('["\\ud800"]', "contains a lone surrogate U+D800"),
}


@pytest.mark.parametrize("case", list(OLD_PAYLOADS))
def test_log_show_json_shows_an_unreadable_payload_as_its_text(case: str, make_runtime) -> None:
    runtime = make_runtime()
    attachment, note = OLD_PAYLOADS[case]
    stored = payload_text(attachment)
    request_id = insert_old_row(runtime, stored)

    result = invoke("log", "show", request_id, "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["request_id"] == request_id and document["status"] == "failed"
    assert document["payload"] == stored
    assert note in document["payload_note"] and document["payload_note"].endswith("shown as stored text")
    assert [a["attempt"] for a in document["attempts"]] == [1]


@pytest.mark.parametrize("case", list(OLD_PAYLOADS))
def test_log_show_text_reads_an_unreadable_payload(case: str, make_runtime) -> None:
    runtime = make_runtime()
    request_id = insert_old_row(runtime, payload_text(OLD_PAYLOADS[case][0]))

    result = invoke("log", "show", request_id)

    assert result.exit_code == 0, result.output
    assert request_id in result.stdout and "failed" in result.stdout


def test_log_show_parses_an_old_payload_still_within_reach(make_runtime) -> None:
    runtime = make_runtime()
    deeper_than_allowed_now = "[" * 40 + "]" * 40  # refused at dispatch today, readable all the same
    request_id = insert_old_row(runtime, payload_text(deeper_than_allowed_now))

    document = json.loads(invoke("log", "show", request_id, "--json").stdout)

    assert document["payload_note"] is None
    assert document["payload"]["data"]["attachment"] == json.loads(deeper_than_allowed_now)


def test_log_show_of_a_current_delivery_has_no_note(make_runtime) -> None:
    from dispatcher import dispatch

    make_runtime(endpoints=[{"name": "partner-a", "url": URL, "events": ["*"]}])
    (request_id,) = dispatch("message_created", events.CATALOGUE["message_created"].example())

    document = json.loads(invoke("log", "show", request_id, "--json").stdout)

    assert document["payload_note"] is None
    assert document["payload"]["data"]["message"] == "Hello from clinician"


@pytest.mark.parametrize("rows", ["deliveries", "attempts"])
def test_log_export_writes_stored_payloads_as_strings(rows: str, make_runtime) -> None:
    runtime = make_runtime()
    deep = payload_text("[" * 500 + "]" * 500)
    nan = payload_text("[NaN]")
    insert_old_row(runtime, deep)
    insert_old_row(runtime, nan)
    column = "payload" if rows == "deliveries" else "request_payload"

    jsonl = invoke("log", "export", "--rows", rows)
    as_csv = invoke("log", "export", "--rows", rows, "--format", "csv")

    assert jsonl.exit_code == 0 and as_csv.exit_code == 0, jsonl.output + as_csv.output
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert sorted(line[column] for line in lines) == sorted([deep, nan])
    records = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert sorted(r[column] for r in records) == sorted([deep, nan])
