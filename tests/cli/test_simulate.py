"""``dispatcher simulate`` in-process (click's runner) against the real Redis and SQLite: a dry run
prints the events and dispatches nothing, a short run sends only to the endpoints named, and a
run with nothing to deliver to or a bad duration is refused in one line. The traffic it makes is
tested in tests/ops/test_simulate.py."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from dispatcher import store
from dispatcher.vocabulary import EVENT_NAMES
from tests.cli.helpers import invoke

PARTNERS = [
    {"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "k-sim-a"},
    {"name": "partner-b", "url": "http://127.0.0.1:9/b", "key": "k-sim-b"},
]


def test_a_dry_run_prints_rate_times_duration_events_and_a_line_on_stderr(make_runtime) -> None:
    runtime = make_runtime(endpoints=PARTNERS)
    result = invoke("simulate", "--dry-run", "--rate", "300/m", "--duration", "2s", "--seed", "11")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 10 and all(set(line) == {"event", "data"} for line in lines)
    assert {line["event"] for line in lines} <= set(EVENT_NAMES)
    assert result.stderr == "10 events generated (dry run: nothing dispatched)\n"
    other_seed = invoke("simulate", "--dry-run", "--rate", "300/m", "--duration", "2s", "--seed", "12")
    assert other_seed.stdout != result.stdout
    assert store.list_deliveries(runtime.engine) == []


def test_a_short_run_sends_only_to_the_endpoints_named(make_runtime) -> None:
    runtime = make_runtime(endpoints=PARTNERS)
    result = invoke("simulate", "--rate", "50/s", "--duration", "0.2", "--endpoint", "partner-b", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["events"] == summary["deliveries"] == 10
    rows = store.list_deliveries(runtime.engine, limit=100)
    assert len(rows) == 10 and {r["endpoint"] for r in rows} == {"partner-b"}
    assert Counter(r["event"] for r in rows) == Counter(summary["events_by_type"])


def test_a_run_with_no_endpoint_configured_is_refused(make_runtime) -> None:
    runtime = make_runtime()
    result = invoke("simulate", "--rate", "5/s", "--duration", "1s")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        "error: no endpoints are configured, so nothing would be delivered; "
        "add one to the config, or use --dry-run to see the events\n"
    )
    assert store.list_deliveries(runtime.engine) == []


@pytest.mark.parametrize("duration", ["forever", "-1s"])
def test_a_bad_duration_is_a_usage_error(duration: str, make_runtime) -> None:
    make_runtime(endpoints=PARTNERS)
    result = invoke("simulate", "--duration", duration)
    assert result.exit_code == 2
    assert "'--duration'" in result.stderr and duration in result.stderr
