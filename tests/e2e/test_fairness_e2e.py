"""One slow partner must not starve the others: real workers, two real receivers."""

from __future__ import annotations

import time

from dispatcher import dispatch_many, store
from dispatcher.contract import catalogue as events
from tests.conftest import wait_for
from tests.servers import Answer, ScriptedReceiver


def test_a_partner_that_times_out_does_not_starve_another(make_runtime, write_config, start_worker, receiver):
    slow = ScriptedReceiver()
    slow.default = Answer(delay=3.0)  # longer than its 1 s timeout: every attempt times out
    try:
        endpoints = [
            {
                "name": "slow",
                "url": slow.url,
                "key": "k-slow-1",
                "timeout": 1,
                "max_concurrency": 1,
                "backoff": [1],
            },
            {"name": "fast", "url": receiver.url, "key": "k-fast-1"},
        ]
        runtime = make_runtime(endpoints=endpoints)
        config = write_config(endpoints=endpoints)
        start_worker(config, name="fair-1")
        start_worker(config, name="fair-2")
        example = events.CATALOGUE["order_changed"].example()
        started = time.monotonic()
        dispatch_many("order_changed", [example] * 8, endpoints=["slow"])
        fast_ids = dispatch_many("order_changed", [example] * 30, endpoints=["fast"])

        def fast_done():
            rows = [store.get_delivery(runtime.engine, rid) for rid in fast_ids]
            return all(r["status"] == "delivered" for r in rows)

        wait_for(fast_done, timeout=60, message="the fast partner's deliveries")
        elapsed = time.monotonic() - started
        slow_attempts = len(slow.received)
        arrivals = sorted(r.at for r in receiver.received)
        print(
            f"\nfast partner: 30 delivered {elapsed:.1f} s after dispatch (first to last arrival "
            f"{arrivals[-1] - arrivals[0]:.1f} s) while the slow one took {slow_attempts} timed-out attempts"
        )
        # the slow partner never had more than one request in flight, so a worker was always free
        intervals = sorted((r.at, r.at + 1.0) for r in slow.received)
        assert all(
            later[0] >= earlier[1] - 0.05 for earlier, later in zip(intervals, intervals[1:], strict=False)
        )
        assert slow_attempts >= 1
        assert {len(receiver.for_request(rid)) for rid in fast_ids} == {1}
    finally:
        slow.close()
