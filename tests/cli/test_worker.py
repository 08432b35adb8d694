"""``dispatcher worker`` and ``dispatcher reconcile``: the worker's options refused before any
process starts (in-process, click's runner), and reconcile on a real command line re-queueing
what a Redis flush lost."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dispatcher import store
from dispatcher.cli import cli
from dispatcher.times import utcnow
from tests.cli.helpers import invoke, run_cli

KEY = "cli-partner-key-456"


def test_worker_threads_out_of_range_is_refused_naming_the_option(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from dispatcher.cli import cli

    monkeypatch.chdir(tmp_path)  # no config.yaml here: the defaults
    result = CliRunner().invoke(cli, ["worker", "--threads", "65"])
    assert result.exit_code == 2
    assert "--threads" in result.output and "65" in result.output


def test_reconcile_command_requeues_after_flush(make_runtime, write_config, receiver, redis_client):
    ep = {"name": "partner-a", "url": receiver.url, "key": KEY}
    runtime = make_runtime(endpoints=[ep])
    config = write_config(endpoints=[ep])
    (sent,) = json.loads(run_cli(config, "send", "order_changed", "--sample", "--json").stdout)["deliveries"]
    request_id = sent["request_id"]
    redis_client.flushdb()
    # make the row older than reconcile's grace period for in-progress dispatches
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .values(updated_at=utcnow().replace(year=2020))
            .where(store.DELIVERIES.c.request_id == request_id)
        )
    report = json.loads(run_cli(config, "reconcile", "--json").stdout)
    assert report["requeued"] == [request_id]
    assert redis_client.exists(f"rq:job:{request_id}") == 1
    again = json.loads(run_cli(config, "reconcile", "--json").stdout)
    assert again["requeued"] == []


def test_worker_help_names_its_options() -> None:
    result = invoke("worker", "--help")
    assert result.exit_code == 0
    for option in ("--burst", "--name", "--concurrency", "--threads", "--verbose"):
        assert option in result.stdout
    assert "one line per attempt" in result.stdout


def test_worker_concurrency_out_of_range_and_an_unknown_option_are_usage_errors(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config.yaml here: the defaults
    for value in ("0", "257", "many"):
        result = CliRunner().invoke(cli, ["worker", "--concurrency", value])
        assert result.exit_code == 2
        assert "'--concurrency'" in result.stderr and value in result.stderr
    unknown = CliRunner().invoke(cli, ["worker", "--queue", "other"])
    assert unknown.exit_code == 2 and "No such option" in unknown.stderr and "--queue" in unknown.stderr


def test_worker_with_a_bad_config_stops_in_one_line_before_starting(tmp_path, monkeypatch) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("delivery: {timeout: thirty}\n")
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))
    result = CliRunner().invoke(cli, ["worker", "--burst"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: config: delivery.timeout") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_reconcile_with_nothing_to_repair_says_so(make_runtime) -> None:
    make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": KEY}])
    text = invoke("reconcile")
    assert text.exit_code == 0
    assert text.stdout == (
        "checked 0 unfinished deliveries: 0 re-queued, 0 recovered from dead workers, 0 overdue retries moved\n"
    )
    report = json.loads(invoke("reconcile", "--json").stdout)
    assert report["requeued"] == [] and report["abandoned"] == [] and report["overdue"] == []
