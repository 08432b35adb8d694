"""``dispatcher endpoints list|disable|enable`` in-process (click's runner) against the real Redis
and SQLite: each endpoint's state and what it holds back, what disabling and enabling say, and
the held-back deliveries re-sent (then delivered) or left failed as the operator answers."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dispatcher import dispatch, store
from dispatcher.cli import cli
from dispatcher.contract import catalogue as events
from tests.cli.helpers import invoke
from tests.worker.test_flight import deliver

EXAMPLE = events.CATALOGUE["order_changed"].example()
PARTNERS = [
    {"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "k-endpoints-a"},
    {"name": "partner-b", "url": "http://127.0.0.1:9/b", "key": "k-endpoints-b", "events": ["order_changed"]},
]


def held_back(runtime, name: str) -> int:
    """Disables ``name`` and dispatches two orders, which it holds back."""
    assert invoke("endpoints", "disable", name, "--reason", "partner asked for a pause").exit_code == 0
    runtime.disabled.invalidate()
    dispatch("order_changed", EXAMPLE, endpoints=[name])
    dispatch("order_changed", EXAMPLE, endpoints=[name])
    return 2


def test_list_shows_each_configured_endpoint_and_its_state(make_runtime) -> None:
    runtime = make_runtime(endpoints=PARTNERS)
    listed = json.loads(invoke("endpoints", "list", "--json").stdout)
    assert [(e["name"], e["url"], e["disabled"], e["held_back"]) for e in listed] == [
        ("partner-a", "http://127.0.0.1:9/a", False, 0),
        ("partner-b", "http://127.0.0.1:9/b", False, 0),
    ]
    assert listed[1]["events"] == ["order_changed"] and listed[0]["reason"] is None

    held_back(runtime, "partner-b")
    listed = json.loads(invoke("endpoints", "list", "--json").stdout)
    assert (listed[1]["disabled"], listed[1]["reason"], listed[1]["held_back"]) == (
        True,
        "partner asked for a pause",
        2,
    )
    assert listed[1]["disabled_at"].endswith("Z") and listed[0]["disabled"] is False
    table = invoke("endpoints", "list").stdout
    assert "partner asked for a pause" in table and "disabled" in table and "enabled" in table
    assert "k-endpoints" not in table


def test_enable_no_resend_leaves_the_held_back_failed_and_says_how_to_resend(make_runtime) -> None:
    runtime = make_runtime(endpoints=PARTNERS)
    held_back(runtime, "partner-a")
    assert invoke("endpoints", "disable", "partner-a").stdout == "partner-a: already disabled\n"

    result = invoke("endpoints", "enable", "partner-a", "--no-resend")

    assert result.exit_code == 0
    assert result.stdout == (
        "partner-a: enabled\n"
        "2 held-back deliveries left failed; `dispatcher retry ID...` re-sends any of them\n"
    )
    rows = [
        store.get_delivery(runtime.engine, r["request_id"]) for r in store.list_deliveries(runtime.engine)
    ]
    assert [(r["status"], r["reason"]) for r in rows] == [("failed", "endpoint_disabled")] * 2
    again = invoke("endpoints", "enable", "partner-a", "--no-resend")
    assert again.stdout.startswith("partner-a: already enabled\n")


def test_enable_asks_before_resending_what_was_held_back(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=PARTNERS)
    held_back(runtime, "partner-a")

    result = invoke("endpoints", "enable", "partner-a", input="y\n")

    assert result.exit_code == 0
    assert "re-send the 2 deliveries held back while partner-a was disabled?" in result.stdout
    assert "partner-a: enabled" in result.stdout and "2 held-back deliveries re-queued" in result.stdout
    rows = store.list_deliveries(runtime.engine)
    assert {r["status"] for r in rows} == {"queued"}
    assert {redis_client.exists(f"rq:job:{r['request_id']}") for r in rows} == {1}


def test_an_unknown_endpoint_is_one_line_naming_the_configured_ones(make_runtime) -> None:
    make_runtime(endpoints=PARTNERS)
    for action in ("disable", "enable"):
        result = invoke("endpoints", action, "partner-z")
        assert result.exit_code == 1
        assert result.stderr == "error: unknown endpoint 'partner-z'; configured: partner-a, partner-b\n"
    assert invoke("endpoints", "disable").exit_code == 2


def ep(receiver, **extra):
    return {"name": "partner-a", "url": receiver.url, "key": "k-health-1", **extra}


def test_endpoints_commands_disable_enable_and_resend_held_back(make_runtime, receiver, redis_client):
    runtime = make_runtime(endpoints=[ep(receiver)])
    runner = CliRunner()
    assert "partner-a: disabled" in runner.invoke(cli, ["endpoints", "disable", "partner-a"]).output
    runtime.disabled.invalidate()
    held = [dispatch("order_changed", EXAMPLE)[0] for _ in range(2)]
    listed = json.loads(runner.invoke(cli, ["endpoints", "list", "--json"]).output)
    assert listed[0]["disabled"] is True and listed[0]["held_back"] == 2
    result = runner.invoke(cli, ["endpoints", "enable", "partner-a", "--resend"])
    assert "partner-a: enabled" in result.output and "2 held-back deliveries re-queued" in result.output
    runtime.disabled.invalidate()
    for request_id in held:
        assert store.get_delivery(runtime.engine, request_id)["status"] == "queued"
        assert deliver(request_id) is None
        assert store.get_delivery(runtime.engine, request_id)["status"] == "delivered"
    unknown = runner.invoke(cli, ["endpoints", "disable", "nope"])
    assert unknown.exit_code == 1 and "unknown endpoint 'nope'" in unknown.output
