"""Hostile partners and recovery, through real worker processes: a partner that drips its answer
holds no worker hostage; Redis coming back, or a worker killed, costs seconds, not minutes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatcher import dispatch, store
from dispatcher.contract.catalogue import CATALOGUE
from dispatcher.vocabulary import FINAL_STATUSES
from tests.conftest import wait_for
from tests.servers import DripServer

EXAMPLE = CATALOGUE["order_changed"].example()


@pytest.fixture
def drip() -> Iterator[DripServer]:
    server = DripServer(drip="headers", interval=0.4)
    yield server
    server.close()


def final(runtime, request_id: str) -> dict | None:
    row = store.get_delivery(runtime.engine, request_id)
    return row if row and row["status"] in FINAL_STATUSES else None


def test_a_dripping_partner_is_cut_at_its_timeout_and_holds_no_other_partner(
    make_runtime, write_config, start_worker, receiver, drip
) -> None:
    endpoints = [
        {"name": "slow", "url": drip.url, "key": "k-slow-1", "timeout": 2, "connect_timeout": 1},
        {"name": "fast", "url": receiver.url, "key": "k-fast-1"},
    ]
    runtime = make_runtime(endpoints=endpoints, delivery={"backoff": [60]})
    start_worker(write_config(endpoints=endpoints, delivery={"backoff": [60]}, worker={"threads": 4}))
    (slow,) = dispatch("order_changed", EXAMPLE, endpoints=["slow"])
    wait_for(lambda: drip.requests, timeout=20, message="the slow partner to get its POST")
    (fast,) = dispatch("order_changed", EXAMPLE, endpoints=["fast"])

    delivered = wait_for(lambda: final(runtime, fast), timeout=20, message="the fast partner's delivery")
    assert delivered["status"] == "delivered"
    (cut,) = wait_for(
        lambda: store.list_attempts(runtime.engine, slow), timeout=20, message="the cut attempt"
    )
    (sent,) = store.list_attempts(runtime.engine, fast)
    assert sent["created_at"] < cut["created_at"], "the fast partner waited for the dripping one"
    assert cut["outcome"] == "retry_scheduled" and cut["http_status"] is None
    assert cut["error"].startswith("no complete answer within") and cut["duration_ms"] < 10_000
    assert store.get_delivery(runtime.engine, slow)["status"] == "retrying"
