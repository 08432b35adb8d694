"""``dispatcher send`` and ``dispatcher sample``, in-process (click's runner) and on a real command
line, against the real Redis and SQLite: what JSON cannot carry, and text that is not UTF-8, are
refused in one line naming the field, with nothing stored or queued."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from dispatcher import store
from dispatcher.cli import cli
from dispatcher.contract import catalogue as events
from tests.cli.helpers import invoke
from tests.conftest import ROOT

KEY = "cli-partner-key-456"


def _message_json(**changes: object) -> str:
    data = events.CATALOGUE["message_created"].example()
    data.update(changes)
    return json.dumps(data)  # ensure_ascii: a lone surrogate is written as the escape \ud800


SEND_REFUSALS = {
    "surrogate-in-message": (_message_json(message="hi \ud800"), "message: contains a lone surrogate U+D800"),
    "surrogate-in-attachment-key": (
        _message_json(attachment=[{"na\udc00me": "a.pdf"}]),
        "attachment[0]['na\\udc00me']: object key contains a lone surrogate U+DC00",
    ),
    "nan": (_message_json(attachment=[{"score": float("nan")}]), "attachment[0].score: float nan"),
    "2**53": (_message_json(attachment=[2**53]), "attachment[0]: integer 9007199254740992 is outside"),
    "33-deep": (
        _message_json(attachment=json.loads("[" * 33 + "]" * 33)),
        "nested more than 32 levels deep",
    ),
}


@pytest.mark.parametrize("case", list(SEND_REFUSALS))
def test_send_refuses_what_json_cannot_carry_in_one_line(case: str, make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a"}])
    text, expected = SEND_REFUSALS[case]
    text.encode("ascii")  # the JSON text is plain ASCII: a surrogate is only an escape in it

    result = CliRunner().invoke(cli, ["send", "message_created", "--data", text], catch_exceptions=False)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: invalid data for event 'message_created': ")
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert store.list_deliveries(runtime.engine) == []
    assert redis_client.keys("rq:job:*") == []


def test_send_refuses_a_lone_surrogate_in_dispatched_by_in_one_line(make_runtime) -> None:
    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a"}])
    result = CliRunner().invoke(
        cli, ["send", "order_changed", "--sample", "--dispatched-by", "svc-\udcff"], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid data for event 'order_changed': dispatched_by: ")
    assert result.stderr.count("\n") == 1
    assert store.list_deliveries(runtime.engine) == []


def _order_changed_bytes(status: bytes) -> bytes:
    text = json.dumps({**events.CATALOGUE["order_changed"].example(), "status": "@STATUS@"})
    return text.encode("ascii").replace(b"@STATUS@", status)


def test_text_utf8_cannot_encode_is_a_one_line_error(make_runtime, write_config, receiver, redis_url):
    """On a real command line: a raw byte that is not UTF-8 (Python reads it as a lone surrogate,
    U+DC80 to U+DCFF) and the JSON escape \\ud800 are both refused naming the field, nothing sent."""
    ep = {"name": "partner-a", "url": receiver.url, "key": KEY}
    runtime = make_runtime(endpoints=[ep])
    config = write_config(endpoints=[ep])
    env = {**os.environ, "DISPATCHER_CONFIG": str(config)}
    env.pop("DISPATCHER_REDIS_URL", None)
    env.pop("DISPATCHER_DATABASE_URL", None)
    send = [sys.executable, "-m", "dispatcher", "send", "order_changed"]
    cases = [
        (["--data", _order_changed_bytes(b"\xff")], "status: contains a lone surrogate U+DCFF at index 0"),
        (
            ["--data", _order_changed_bytes(b"ok\\ud800")],
            "status: contains a lone surrogate U+D800 at index 2",
        ),
        (
            ["--sample", "--dispatched-by", b"svc-\xe9"],
            "dispatched_by: contains a lone surrogate U+DCE9 at index 4",
        ),
    ]
    for args, expected in cases:
        result = subprocess.run(send + args, cwd=ROOT, env=env, capture_output=True, timeout=60)
        stderr = result.stderr.decode("utf-8")
        assert result.returncode == 1, stderr
        assert stderr.startswith("error: invalid data for event 'order_changed': ") and expected in stderr
        assert stderr.count("\n") == 1 and result.stdout == b""
    assert store.list_deliveries(runtime.engine) == []
    assert receiver.received == []


def test_sample_prints_the_seed_example_and_send_takes_it_back(make_runtime, redis_client, tmp_path) -> None:
    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": KEY}])
    printed = invoke("sample", "order_changed")
    assert printed.exit_code == 0 and printed.stderr == ""
    assert json.loads(printed.stdout) == events.CATALOGUE["order_changed"].example()
    data_file = tmp_path / "order.json"
    data_file.write_text(printed.stdout)

    sent = invoke("send", "order_changed", "--data", f"@{data_file}", "--dispatched-by", "cli-test", "--json")

    assert sent.exit_code == 0, sent.output
    ((endpoint, request_id),) = [
        (d["endpoint"], d["request_id"]) for d in json.loads(sent.stdout)["deliveries"]
    ]
    assert endpoint == "partner-a"
    row = store.get_delivery(runtime.engine, request_id)
    assert (row["event"], row["endpoint"], row["status"]) == ("order_changed", "partner-a", "queued")
    payload = json.loads(row["payload"])
    assert payload["data"] == events.CATALOGUE["order_changed"].example()
    assert payload["metadata"]["dispatched_by"] == "cli-test"
    assert redis_client.exists(f"rq:job:{request_id}") == 1


def test_send_takes_exactly_one_of_data_and_sample(make_runtime) -> None:
    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a"}])
    for args in ((), ("--sample", "--data", "{}")):
        result = invoke("send", "order_changed", *args)
        assert result.exit_code == 2
        assert "give exactly one of --data JSON|@file.json or --sample" in result.stderr
    unknown = invoke("send", "order_shipped", "--sample")
    assert unknown.exit_code == 2 and "order_shipped" in unknown.stderr
    assert store.list_deliveries(runtime.engine) == []


def test_send_to_an_event_nobody_subscribes_to_says_nothing_was_sent(make_runtime) -> None:
    runtime = make_runtime(
        endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a", "events": ["order_changed"]}]
    )
    result = invoke("send", "message_created", "--sample")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "no endpoint subscribes to message_created; nothing was sent\n"
    assert invoke("send", "message_created", "--sample", "--json").stdout == '{\n  "deliveries": []\n}\n'
    assert store.list_deliveries(runtime.engine) == []


ENDPOINTS = [
    {"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": KEY},
    {"name": "pharmacy-long-name", "url": "http://127.0.0.1:9/p", "key": KEY, "events": ["order_changed"]},
    {"name": "other", "url": "http://127.0.0.1:9/o", "key": KEY, "events": ["message_created"]},
]


def test_send_prints_one_row_per_delivery_with_its_endpoint(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    result = invoke("send", "order_changed", "--sample")
    assert result.exit_code == 0 and result.stderr == ""
    header, *rows = result.stdout.splitlines()
    assert header == "endpoint            request_id"
    by_endpoint = {row.split()[0]: row.split()[1] for row in rows}
    assert list(by_endpoint) == ["partner-a", "pharmacy-long-name"]
    for row, (endpoint, request_id) in zip(rows, by_endpoint.items(), strict=True):
        assert row == f"{endpoint:<18}  {request_id}"  # aligned under the header
        assert store.get_delivery(runtime.engine, request_id)["endpoint"] == endpoint
        assert redis_client.exists(f"rq:job:{request_id}") == 1


def test_send_json_names_each_deliverys_endpoint_also_for_a_repeated_key(make_runtime) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    args = ("send", "order_changed", "--sample", "--idempotency-key", "order-9", "--json")
    first = json.loads(invoke(*args).stdout)
    again = json.loads(invoke(*args).stdout)  # the first send's deliveries, nothing new
    assert first == again
    assert [d["endpoint"] for d in first["deliveries"]] == ["partner-a", "pharmacy-long-name"]
    assert all(list(d) == ["endpoint", "request_id"] for d in first["deliveries"])
    assert len(store.list_deliveries(runtime.engine)) == 2
