"""One rule for a disabled endpoint, whatever the way in (issue 21 #9), against the real Redis,
on SQLite and PostgreSQL: a new delivery -- dispatch(), dispatch_many(), the outbox,
``dispatcher send``, ``dispatcher replay`` -- is stored failed with reason endpoint_disabled and
gets no job; an existing failed delivery is not re-opened -- ``dispatcher retry ID`` is refused
naming the endpoint, ``retry --failed`` skips and counts it -- until the endpoint is enabled."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from dispatcher import dispatch, dispatch_many, store
from dispatcher.cli import cli
from dispatcher.contract import catalogue as events
from dispatcher.intake.outbox import dispatch_in_transaction
from dispatcher.ops import resend

ORDER = events.CATALOGUE["order_changed"].example()
ENDPOINTS = [
    {"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "key-a-123"},
    {"name": "partner-b", "url": "http://127.0.0.1:9/b", "key": "key-b-456"},
]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def runtime(make_runtime, database_url: str):
    runtime = make_runtime(database_url=database_url, endpoints=ENDPOINTS)
    store.set_endpoint_disabled(runtime.engine, "partner-a", True, "disabled by an operator")
    runtime.disabled.invalidate()
    return runtime


def held_back(runtime, redis_client, request_id: str) -> bool:
    """Stored failed ``endpoint_disabled``, without an attempt, and no job in Redis."""
    row = store.get_delivery(runtime.engine, request_id)
    return (row["status"], row["reason"], row["attempts"]) == (
        "failed",
        "endpoint_disabled",
        0,
    ) and redis_client.exists(f"rq:job:{request_id}") == 0


def by_endpoint(runtime, request_ids: list[str]) -> dict[str, str]:
    return {store.get_delivery(runtime.engine, r)["endpoint"]: r for r in request_ids}


def test_every_way_in_for_new_deliveries_holds_them_back(runtime, redis_client) -> None:
    with Session(runtime.engine) as session:
        outboxed = dispatch_in_transaction(session, "order_changed", ORDER)
        session.commit()
    sent = [
        d["request_id"]
        for d in json.loads(invoke("send", "order_changed", "--sample", "--json").stdout)["deliveries"]
    ]
    for request_ids in (
        outboxed,
        sent,
        dispatch("order_changed", ORDER),
        dispatch_many("order_changed", [ORDER]),
    ):
        mine = by_endpoint(runtime, request_ids)
        assert held_back(runtime, redis_client, mine["partner-a"]), request_ids
        assert store.get_delivery(runtime.engine, mine["partner-b"])["status"] == "queued"
        assert redis_client.exists(f"rq:job:{mine['partner-b']}") == 1


def test_a_replay_to_a_disabled_endpoint_is_held_back(runtime, redis_client) -> None:
    store.set_endpoint_disabled(runtime.engine, "partner-a", False)
    (original,) = dispatch("order_changed", ORDER, endpoints=["partner-a"])
    store.set_endpoint_disabled(runtime.engine, "partner-a", True, "disabled by an operator")

    result = invoke("replay", "--since", "1h", "--endpoint", "partner-a", "--yes", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (replay,) = report["replays"]
    assert replay["replay_of"] == original
    assert held_back(runtime, redis_client, replay["request_id"])
    assert report["replayed"] == 1 and report["held_back"] == 1
    assert "held back, stored failed (endpoint_disabled): endpoint partner-a is disabled" in result.stderr


def test_a_retry_to_a_disabled_endpoint_is_refused_then_works_once_enabled(runtime, redis_client) -> None:
    (held,) = dispatch("order_changed", ORDER, endpoints=["partner-a"])
    assert resend.retry_one(runtime, held) == ("endpoint_disabled", "failed")
    assert held_back(runtime, redis_client, held)

    result = invoke("retry", held)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"{held}: not re-queued, endpoint partner-a is disabled "
        "(`dispatcher endpoints enable partner-a` re-sends what it held back)"
    )
    assert held_back(runtime, redis_client, held)

    # Enabled elsewhere (this process's few-second cache not told): a retry reads the state afresh.
    store.set_endpoint_disabled(runtime.engine, "partner-a", False)
    assert resend.retry_one(runtime, held) == ("requeued", "failed")
    assert store.get_delivery(runtime.engine, held)["status"] == "queued"
    assert redis_client.exists(f"rq:job:{held}") == 1


def test_retry_failed_skips_and_counts_the_deliveries_of_a_disabled_endpoint(runtime, redis_client) -> None:
    ids = by_endpoint(runtime, dispatch("order_changed", ORDER))
    store.fail_delivery(runtime.engine, ids["partner-b"], "HTTP 404 is not retried")
    redis_client.flushdb()  # the failed one's old job: gone, as after a worker's run

    result = invoke("retry", "--failed", "--yes", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["matched"], report["requeued"]) == (2, 1)
    assert report["request_ids"] == [ids["partner-b"]] and report["skipped_endpoint_disabled"] == 1
    assert held_back(runtime, redis_client, ids["partner-a"])
    assert redis_client.exists(f"rq:job:{ids['partner-b']}") == 1

    store.fail_delivery(runtime.engine, ids["partner-b"], "HTTP 404 is not retried")
    text = invoke("retry", "--failed", "--yes")
    assert "re-queued 1 of 2" in text.stdout
    assert "1 delivery left failed: endpoint disabled (partner-a)" in text.stderr
