"""A partner that echoes its key (in an answer, or an error quoting a header) never puts it in the
transaction log, the process log or what operators read."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dispatcher import dispatch, store
from dispatcher.cli import cli
from dispatcher.contract.catalogue import CATALOGUE
from dispatcher.times import utcnow
from tests.servers import Answer
from tests.worker.test_flight import deliver

KEY = "partner-key-0123456789abcdef"


def test_an_echoed_key_is_masked_wherever_it_is_stored(make_runtime, receiver, tmp_path) -> None:
    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": receiver.url, "key": KEY}])
    echoed = json.dumps({"error": f"bad key {KEY}", "escaped": json.dumps(KEY + "\n")}).encode()
    receiver.script_all(Answer(status=400, body=echoed))
    (request_id,) = dispatch("order_changed", CATALOGUE["order_changed"].example())
    assert deliver(request_id) is None

    (attempt,) = store.list_attempts(runtime.engine, request_id)
    assert KEY not in attempt["response_body"] and "****" in attempt["response_body"]
    runner = CliRunner()
    shown = runner.invoke(cli, ["log", "show", request_id, "--json"]).output
    exported = runner.invoke(cli, ["log", "export", "--rows", "attempts"]).output
    process_log = "".join(p.read_text() for p in (tmp_path / "logs").glob("*-20*.log"))
    for text in (shown, exported, process_log):
        assert KEY not in text


def test_what_an_older_version_stored_is_masked_when_shown(make_runtime) -> None:
    """Rows written before keys were masked at the source, and a URL with credentials."""
    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/hook", "key": KEY}])
    (request_id,) = dispatch("order_changed", CATALOGUE["order_changed"].example())
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id == request_id)
            .values(url="https://user:hunter2-password@partner.example/hook")
        )
        conn.execute(
            store.ATTEMPTS.insert().values(
                request_id=request_id, event="order_changed", endpoint="partner-a",
                url="https://user:hunter2-password@partner.example/hook", attempt=1, retry=False,
                outcome="failed", error=f"InvalidHeader: Invalid leading whitespace in header value {KEY!r}",
                response_body=f"echo {KEY}", created_at=utcnow(),
            )
        )  # fmt: skip
    runner = CliRunner()
    for args in (["log", "show", request_id, "--json"], ["log", "show", request_id], ["log", "export"]):
        output = runner.invoke(cli, args).output
        assert KEY not in output and "hunter2-password" not in output, args
