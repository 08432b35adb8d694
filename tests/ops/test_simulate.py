"""``dispatcher simulate`` through the CLI: a bad rate or endpoint refused, a dry run's seeded
events, a real run stored and delivered, production refused. The generator and its pacing are
tested in tests/ops/simulate/."""

from __future__ import annotations

import json
from collections import Counter

from click.testing import CliRunner

from dispatcher import store
from dispatcher.cli import cli
from dispatcher.contract.validation import validate
from dispatcher.ops import simulate
from tests.conftest import wait_for
from tests.ops.simulate.test_encounters import take


def test_cli_rejects_a_bad_rate_and_an_unknown_endpoint(make_runtime, receiver):
    make_runtime(endpoints=[{"name": "partner", "url": receiver.url}])
    result = CliRunner().invoke(cli, ["simulate", "--rate", "fast"])
    assert result.exit_code == 2 and "--rate" in result.output
    result = CliRunner().invoke(cli, ["simulate", "--duration", "1s", "--endpoint", "nope"])
    assert result.exit_code == 1 and "error: unknown endpoint 'nope'" in result.output


def test_dry_run_prints_the_seeded_events_and_dispatches_nothing(make_runtime, receiver):
    runtime = make_runtime(endpoints=[{"name": "partner", "url": receiver.url}])
    args = ["simulate", "--dry-run", "--seed", "7", "--rate", "10/s", "--duration", "3s"]
    first = CliRunner().invoke(cli, args, catch_exceptions=False)
    second = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert first.exit_code == 0
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(lines) == 30
    assert first.stdout == second.stdout
    expected = take(7, 30, start=simulate.SIM_EPOCH, mean_gap_seconds=0.1)
    assert [(x["event"], x["data"]) for x in lines] == [(e, validate(e, d)) for e, d in expected]
    assert store.list_deliveries(runtime.engine, limit=10) == []


def test_a_real_run_stores_and_delivers_about_rate_times_duration(
    make_runtime, receiver, write_config, start_worker
):
    endpoints = [{"name": "partner", "url": receiver.url}]
    runtime = make_runtime(endpoints=endpoints)
    result = CliRunner().invoke(
        cli,
        ["simulate", "--rate", "20/s", "--duration", "1s", "--seed", "3", "--endpoint", "partner", "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["events"] == 20 and summary["planned_events"] == 20
    assert summary["deliveries"] == 20
    assert sum(summary["events_by_type"].values()) == 20
    assert 0.9 <= summary["elapsed_seconds"] < 5
    assert summary["achieved_rate"] > 4
    rows = store.list_deliveries(runtime.engine, limit=1000)
    assert len(rows) == 20
    assert {r["endpoint"] for r in rows} == {"partner"}
    assert Counter(r["event"] for r in rows) == Counter(summary["events_by_type"])
    payload = json.loads(store.get_delivery(runtime.engine, rows[0]["request_id"])["payload"])
    assert payload["metadata"]["dispatched_by"] == "SIMULATOR"

    start_worker(write_config(endpoints=endpoints), name="simulate-worker")
    wait_for(lambda: len(receiver.request_ids()) == 20, timeout=60, message="20 simulated deliveries")
    assert {r["request_id"] for r in rows} == receiver.request_ids()

    table = CliRunner().invoke(
        cli, ["simulate", "--rate", "50/s", "--duration", "0.2"], catch_exceptions=False
    )
    assert table.exit_code == 0
    assert "10 of 10 events" in table.stdout and "10 deliveries created" in table.stdout


def test_simulate_refuses_production(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from dispatcher.cli import cli
    from dispatcher.runtime import Runtime, set_runtime
    from tests.conftest import settings_from

    raw = {
        "environment": "production",
        "endpoints": [{"name": "p", "url": "https://p.example.com", "key": "k-prod-1"}],
    }
    previous = set_runtime(Runtime(settings_from(raw)))
    try:
        result = CliRunner().invoke(cli, ["simulate", "--rate", "5/s", "--duration", "1s"])
    finally:
        set_runtime(previous)
    assert result.exit_code != 0
    assert result.exit_code == 1 and "refusing in environment production" in result.output
