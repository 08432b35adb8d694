"""docs/partners.md's code, run as written: its Python functions and receiver against real
signatures from dispatcher.contract.signing and against a real worker's deliveries, the
adnanh/webhook command and hooks.json, the Node receiver (when node is installed) against a
real worker, and the datamodel-codegen tip."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from dispatcher import dispatch, store
from dispatcher.cli import cli
from dispatcher.contract.catalogue import CATALOGUE
from dispatcher.contract.schemas import example_payload
from dispatcher.contract.signing import decode_secret, generate_secret, signature_headers
from dispatcher.contract.wrapper import dumps
from dispatcher.vocabulary import DeliveryStatus
from tests.conftest import ROOT
from tests.worker.test_flight import deliver

GUIDE = ROOT / "docs" / "partners.md"
KEY = "partner-key-7Qm2"
SECRET = generate_secret()
CODEGEN_MODULE = "baremeds_webhooks"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", GUIDE.read_text(), re.S | re.M)


def signed(
    body: bytes, *, secret: str = SECRET, at: int | None = None, key: str | None = KEY
) -> dict[str, str]:
    """The headers the sender puts on one attempt (lower-case names, as the guide's code takes them)."""
    request_id = json.loads(body)["metadata"]["request_id"]
    headers = signature_headers(request_id, at or int(time.time()), body, [decode_secret(secret)])
    return {**headers, **({"x-webhook-key": key} if key is not None else {})}


def a_body(event: str = "order_changed") -> bytes:
    return dumps(example_payload(CATALOGUE[event])).encode()


@pytest.fixture
def guide(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The guide's Python blocks (but the codegen one) run in order in one namespace, with the
    environment its receiver reads."""
    monkeypatch.setenv("BAREMEDS_WEBHOOK_KEY", KEY)
    monkeypatch.setenv("BAREMEDS_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("BAREMEDS_WEBHOOKS_DB", str(tmp_path / "webhooks.db"))
    namespace: dict[str, Any] = {"__name__": "partners_guide"}
    for block in blocks("python"):
        if CODEGEN_MODULE not in block:
            exec(compile(block, str(GUIDE), "exec"), namespace)  # the guide's own code
    return namespace


def stored_ids(tmp_path: Path) -> list[str]:
    """The request ids the guide's store_once() stored (none before its first call)."""
    db = sqlite3.connect(tmp_path / "webhooks.db")
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        return (
            [row[0] for row in db.execute("SELECT request_id FROM received")] if "received" in tables else []
        )
    finally:
        db.close()


def test_the_python_checks_take_a_real_signature_and_refuse_the_rest(guide: dict[str, Any]) -> None:
    body = a_body()
    headers = signed(body)
    assert guide["verified_payload"](SECRET, headers, body) == json.loads(body)
    assert guide["signature_is_valid"](SECRET, headers, body)
    refused = [
        (SECRET, headers, body.replace(b"ORDER123", b"ORDER124")),
        (generate_secret(), headers, body),
        (SECRET, signed(body, at=int(time.time()) - 3600), body),
        (SECRET, {**headers, "webhook-signature": ""}, body),
    ]
    for secret, given, raw in refused:
        assert not guide["signature_is_valid"](secret, given, raw)
        assert guide["verified_payload"](secret, given, raw) is None
    other = generate_secret()
    rotated = signature_headers(
        "5f3c9a1e-7b2d-4c8e-9a6f-1d2e3b4c5a6f",
        int(time.time()),
        body,
        [decode_secret(other), decode_secret(SECRET)],
    )
    assert guide["signature_is_valid"](SECRET, rotated, body) and guide["signature_is_valid"](
        other, rotated, body
    )
    assert guide["key_is_valid"](KEY, KEY)
    assert not guide["key_is_valid"](None, KEY) and not guide["key_is_valid"]("xxx", KEY)


def test_the_python_handler_answers_401_to_a_wrong_key_and_stores_a_duplicate_once(
    guide: dict[str, Any], tmp_path: Path
) -> None:
    body = a_body("prescription_submitted")
    assert guide["handle"](signed(body, key="xxx"), body) == 401
    assert guide["handle"](signed(body, key=None), body) == 401
    assert guide["handle"](signed(body, secret=generate_secret()), body) == 401
    assert stored_ids(tmp_path) == []
    assert guide["handle"](signed(body), body) == 200
    assert guide["handle"](signed(body), body) == 200, "a duplicate is answered 2xx"
    assert stored_ids(tmp_path) == [json.loads(body)["metadata"]["request_id"]]


@pytest.fixture
def python_receiver(guide: dict[str, Any]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), guide["Receiver"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/baremeds"
    server.shutdown()
    server.server_close()


def deliver_to(make_runtime, url: str) -> dict[str, dict[str, Any]]:
    """One event dispatched by a real runtime to a right-key and a wrong-key endpoint at ``url``,
    each delivery flown as its job flies it: endpoint name -> its delivery row."""
    runtime = make_runtime(
        endpoints=[
            {"name": "right-key", "url": url, "key": KEY, "signing_secret": SECRET},
            {"name": "wrong-key", "url": url, "key": "xxx", "signing_secret": SECRET},
        ]
    )
    request_ids = dispatch("message_created", CATALOGUE["message_created"].example())
    for request_id in request_ids:
        deliver(request_id)
    rows = [store.get_delivery(runtime.engine, request_id) for request_id in request_ids]
    return {row["endpoint"]: row for row in rows}


def assert_delivered_and_refused(rows: dict[str, dict[str, Any]]) -> None:
    assert rows["right-key"]["status"] == DeliveryStatus.DELIVERED
    assert rows["right-key"]["last_http_status"] == 200
    assert rows["wrong-key"]["status"] == DeliveryStatus.FAILED
    assert (rows["wrong-key"]["last_http_status"], rows["wrong-key"]["attempts"]) == (401, 1)


def test_the_python_receiver_takes_a_real_workers_delivery(
    make_runtime, python_receiver: str, tmp_path: Path
) -> None:
    rows = deliver_to(make_runtime, python_receiver)
    assert_delivered_and_refused(rows)
    assert stored_ids(tmp_path) == [rows["right-key"]["request_id"]]


def test_the_adnanh_webhook_settings_answer_401_and_wait_for_the_command(
    guide: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hooks.json says what the guide says, and the command it names stores a signed body and
    refuses a wrongly signed one; the environment it reads is the one hooks.json passes."""
    (hooks,) = [json.loads(block) for block in blocks("json") if "trigger-rule" in block]
    (hook,) = hooks
    assert hook["trigger-rule-mismatch-http-response-code"] == 401
    assert hook["include-command-output-in-response"] is True
    assert hook["trigger-rule"]["match"]["parameter"] == {"source": "header", "name": "X-Webhook-Key"}
    passed = {
        arg["envname"]: arg for arg in hook["pass-environment-to-command"] + hook["pass-file-to-command"]
    }
    assert passed["WEBHOOK_BODY_FILE"]["source"] == "raw-request-body"
    body = a_body("encounter_cancelled")
    (tmp_path / "body").write_bytes(body)
    monkeypatch.setenv("WEBHOOK_BODY_FILE", str(tmp_path / "body"))
    for name, header in (
        ("WEBHOOK_ID", "webhook-id"),
        ("WEBHOOK_TIMESTAMP", "webhook-timestamp"),
        ("WEBHOOK_SIGNATURE", "webhook-signature"),
    ):
        assert passed[name]["name"] == header
        monkeypatch.setenv(name, signed(body)[header])
    assert guide["store_webhook_command"]() == 0
    assert stored_ids(tmp_path) == [json.loads(body)["metadata"]["request_id"]]
    monkeypatch.setenv("WEBHOOK_SIGNATURE", signed(body, secret=generate_secret())["webhook-signature"])
    assert guide["store_webhook_command"]() == 1


@pytest.fixture
def node_receiver(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed here: the guide's Node receiver is not run")
    (script,) = blocks("js")
    (tmp_path / "receiver.js").write_text(script)
    env = {**os.environ, "PORT": "0", "BAREMEDS_WEBHOOK_KEY": KEY, "BAREMEDS_SIGNING_SECRET": SECRET}
    process = subprocess.Popen(
        [node, str(tmp_path / "receiver.js")], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("listening on "), first
    yield f"http://127.0.0.1:{int(first.split()[-1])}/baremeds", process
    process.terminate()
    process.wait(timeout=10)


def test_the_node_receiver_takes_a_real_workers_delivery_and_a_duplicate_once(
    make_runtime, node_receiver
) -> None:
    url, process = node_receiver
    rows = deliver_to(make_runtime, url)
    assert_delivered_and_refused(rows)
    body = a_body("case_assigned_to_clinician")
    for _ in range(2):
        assert requests.post(url, data=body, headers=signed(body), timeout=10).status_code == 200
    assert (
        requests.post(url, data=body, headers=signed(body, secret=generate_secret()), timeout=10).status_code
        == 401
    )
    stale = signed(body, at=int(time.time()) - 3600)
    assert requests.post(url, data=body, headers=stale, timeout=10).status_code == 401
    process.terminate()
    output, _ = process.communicate(timeout=10)
    assert output.splitlines() == [
        f"stored message_created {rows['right-key']['request_id']}",
        f"stored case_assigned_to_clinician {json.loads(body)['metadata']['request_id']}",
    ]


def test_the_codegen_tip_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's commands (the document from ``dispatcher schema --openapi``, then its
    datamodel-codegen line) and its ``parsed()`` over every event's example."""
    (commands,) = [block for block in blocks("sh") if "datamodel-codegen" in block]
    (line,) = [line for line in commands.splitlines() if line.startswith("datamodel-codegen ")]
    printed = CliRunner().invoke(cli, ["schema", "--openapi"])
    (tmp_path / "baremeds-webhooks.openapi.yaml").write_text(printed.output)
    command = [
        sys.executable,
        "-m",
        "datamodel_code_generator",
        *shlex.split(line)[1:],
        "--formatters",
        "builtin",
    ]
    ran = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    (tip,) = [block for block in blocks("python") if CODEGEN_MODULE in block]
    namespace: dict[str, Any] = {}
    try:
        exec(compile(tip, str(GUIDE), "exec"), namespace)  # the guide's own code
        for event, model in CATALOGUE.items():
            parsed = namespace["parsed"](dumps(example_payload(model)).encode())
            assert type(parsed).__name__ == f"{model.__name__}Webhook"
            assert parsed.event == event
    finally:
        sys.modules.pop(CODEGEN_MODULE, None)
