"""``dispatcher info`` in-process (click's runner) against the real Redis and SQLite: the tables it
prints and its ``--json`` document for a queue with deliveries waiting. What it counts is tested
in tests/ops/test_info.py."""

from __future__ import annotations

import json

from dispatcher import dispatch
from dispatcher.contract import catalogue as events
from tests.cli.helpers import invoke


def table_rows(text: str) -> dict[str, list[str]]:
    """Each table row by its first cell."""
    return {
        cells[0]: cells[1:]
        for line in text.splitlines()
        if "│" in line and (cells := [c.strip() for c in line.split("│")[1:-1]])
    }


def test_info_shows_the_queue_the_workers_and_the_deliveries(make_runtime) -> None:
    make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "k-info-1"}])
    for _ in range(2):
        dispatch("order_changed", events.CATALOGUE["order_changed"].example())

    result = invoke("info")

    assert result.exit_code == 0 and result.stderr == ""
    assert "workers (0)" in result.stdout and "ordered endpoints" not in result.stdout
    rows = table_rows(result.stdout)
    queue = rows["send-webhook-request"]
    assert queue[0] == "2" and queue[2:] == ["0", "0", "0"]  # queued; scheduled, started, failed
    assert rows["queued"] == ["2"] and rows["delivered"] == ["0"] and rows["total"] == ["2"]


def test_info_json_is_one_document(make_runtime) -> None:
    make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "k-info-1"}])
    dispatch("order_changed", events.CATALOGUE["order_changed"].example())

    document = json.loads(invoke("info", "--json").stdout)

    assert (document["queue"], document["queued"], document["workers"]) == ("send-webhook-request", 1, [])
    assert document["deliveries_by_status"]["queued"] == 1
    assert sum(document["deliveries_by_status"].values()) == 1
    assert isinstance(document["oldest_queued_age_seconds"], int | float)
