"""``dispatcher endpoints list|disable|enable|check`` in-process (click's runner) against the real
Redis and SQLite: each endpoint's state and what it holds back, what disabling and enabling say,
the held-back deliveries re-sent (then delivered) or left failed as the operator answers, and
the check's table and JSON against real partners (a receiver, nginx, tinyproxy, a token server)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dispatcher import dispatch, store
from dispatcher.cli import cli
from dispatcher.contract import catalogue as events
from tests.cli.helpers import invoke
from tests.ops.test_endpoint_check import (
    CLIENT_SECRET,
    PROXY_PASSWORD,
    needs_nginx,
    needs_tinyproxy,
    oauth2_endpoint,
    tls_endpoint,
)
from tests.ops.test_endpoint_check import certs_fixture as certs_fixture  # the check's servers
from tests.ops.test_endpoint_check import nginx_fixture as nginx_fixture
from tests.ops.test_endpoint_check import proxy_fixture as proxy_fixture
from tests.ops.test_endpoint_check import token_server_fixture as token_server_fixture
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


# --- endpoints check ------------------------------------------------------------------------------


def check_rows(stdout: str) -> dict[str, list[str]]:
    """The table's rows by step: [result, time, detail]."""
    rows = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if len(cells) == 4 and cells[0] in ("resolve", "connect", "tls", "token", "send"):
            rows[cells[0]] = cells[1:]
    return rows


def test_check_prints_each_step_and_send_delivers_the_sample(make_runtime, receiver) -> None:
    make_runtime(endpoints=[ep(receiver)])
    result = invoke("endpoints", "check", "partner-a", "--send")
    assert result.exit_code == 0, result.output
    rows = check_rows(result.stdout)
    assert list(rows) == ["resolve", "connect", "send"]
    assert rows["resolve"][0] == "✓" and rows["resolve"][1].endswith(" ms")
    (got,) = receiver.received
    assert got.body["event"] == "order_changed"  # the endpoint subscribes to every event
    assert rows["send"] == ["✓", rows["send"][1], f"answered 200 (request_id {got.request_id})"]
    assert result.stdout.splitlines()[0].strip() == "endpoint partner-a"
    assert result.stdout.splitlines()[-1] == "endpoint partner-a: every step passed"
    assert "k-health-1" not in result.output


def test_check_json_on_a_refused_address_exits_1(make_runtime, receiver) -> None:
    make_runtime(endpoints=[ep(receiver)], allow_networks=[])
    result = invoke("endpoints", "check", "partner-a", "--json", "--send", "--event", "message_created")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["endpoint"] == "partner-a" and document["ok"] is False
    resolve, connect, send = document["steps"]
    assert resolve["step"] == "resolve" and resolve["ok"] is False and isinstance(resolve["ms"], int)
    assert resolve["detail"] == "127.0.0.1 is not allowed (loopback): add it to allow_networks"
    assert connect == {"step": "connect", "ok": None, "detail": "skipped: resolve failed", "ms": None}
    assert send["ok"] is None
    assert result.stderr == "error: endpoint partner-a: the resolve step failed\n"
    assert receiver.received == []


def test_check_names_what_is_wrong_with_its_arguments_in_one_line(make_runtime, receiver) -> None:
    make_runtime(endpoints=[ep(receiver, events=["order_changed"])])
    unknown = invoke("endpoints", "check", "partner-z")
    assert unknown.exit_code == 1
    assert unknown.stderr == "error: unknown endpoint 'partner-z'; configured: partner-a\n"
    other = invoke("endpoints", "check", "partner-a", "--send", "--event", "message_created")
    assert other.exit_code == 1 and other.stderr.count("\n") == 1
    assert "does not subscribe to message_created (its events: order_changed)" in other.stderr
    assert invoke("endpoints", "check", "partner-a", "--event", "order_changed").exit_code == 2
    assert receiver.received == []


@needs_nginx
def test_check_shows_a_failed_and_a_skipped_step(make_runtime, nginx, certs) -> None:
    make_runtime(endpoints=[tls_endpoint(nginx, certs, tls_client_cert=None)])
    result = invoke("endpoints", "check", "pharmacy", "--send")
    assert result.exit_code == 1
    rows = check_rows(result.stdout)
    assert rows["tls"][0] == "✗" and rows["tls"][2].endswith(
        "no client certificate was sent; set tls_client_cert"
    )
    assert rows["send"] == ["skipped", "-", "skipped: tls failed"]
    assert result.stderr == "error: endpoint pharmacy: the tls step failed\n"


@needs_nginx
@needs_tinyproxy
def test_check_through_the_proxy_with_a_client_certificate(make_runtime, nginx, proxy, certs) -> None:
    make_runtime(endpoints=[tls_endpoint(nginx, certs, proxy=proxy.url_with("clinic", PROXY_PASSWORD))])
    result = invoke("endpoints", "check", "pharmacy", "--json")
    assert result.exit_code == 0, result.output
    steps = {step["step"]: step for step in json.loads(result.stdout)["steps"]}
    assert steps["connect"]["detail"].startswith(
        f"through proxy {proxy.address}: CONNECT 127.0.0.1:{nginx.port}"
    )
    assert "client certificate offered" in steps["tls"]["detail"]
    assert proxy.requests() == [f"CONNECT 127.0.0.1:{nginx.port} HTTP/1.1"]
    for secret in (PROXY_PASSWORD, certs.key_password, "k-pharmacy-31337"):
        assert secret not in result.output


def test_check_a_wrong_client_secret_without_showing_it(make_runtime, token_server) -> None:
    make_runtime(endpoints=[oauth2_endpoint(token_server, secret="wrong-secret-31337")])
    result = invoke("endpoints", "check", "lab", "--send")
    assert result.exit_code == 1
    rows = check_rows(result.stdout)
    assert rows["token"] == ["✗", rows["token"][1], "oauth2: token endpoint answered 401 invalid_client"]
    assert rows["send"][0] == "skipped" and "wrong-secret-31337" not in result.output

    make_runtime(endpoints=[oauth2_endpoint(token_server)])
    passed = invoke("endpoints", "check", "lab", "--send")
    assert passed.exit_code == 0 and check_rows(passed.stdout)["token"][0] == "✓"
    for secret in (CLIENT_SECRET, *token_server.issued):
        assert secret not in passed.output
