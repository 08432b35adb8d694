"""Scenario 4, a backlog drained: ``dispatch_many`` queues 20,000 deliveries (2,000 with
``--quick``), then 4 burst workers start together and drain it; checked: every delivery
delivered, exactly one attempt row each."""

from __future__ import annotations

from pathlib import Path

from bench.harness import DRAIN_WORKERS, PG_URL, QUEUE_NAME, Sizes, say
from bench.harness.driver import (
    attempt_summary,
    db_engine,
    delivery_counts,
    driver_runtime,
    our_config,
    queue_backlog,
    reset_database,
)
from bench.harness.processes import Processes, our_worker
from bench.harness.services import flush_redis, redis_client, watch_drain
from dispatcher.vocabulary import DeliveryStatus


def run(procs: Processes, tmp: Path, url: str | None, sizes: Sizes) -> dict:
    """Drain from start (starting the workers to the last one exiting), the steady rate by the
    queue, and first claim → last record from the database."""
    assert url is not None, "the drain scenario needs the instant receiver"
    n = sizes.drain
    say(f"4. backlog drain: {n} deliveries, {DRAIN_WORKERS} burst workers")
    flush_redis()
    reset_database(PG_URL)
    config, raw = our_config(tmp, "drain", url, PG_URL)
    with driver_runtime(raw):
        queued_in = queue_backlog(n)
    conn = redis_client()
    workers = [our_worker(procs, config, f"drain-{i}", burst=True) for i in range(DRAIN_WORKERS)]
    try:
        result = watch_drain(conn, f"rq:queue:{QUEUE_NAME}", workers, n, timeout=max(300, n / 10))
    finally:
        procs.stop(workers)
    engine = db_engine(PG_URL)
    counts = delivery_counts(engine)
    summary = attempt_summary(engine)
    engine.dispose()
    conn.close()
    flush_redis()
    result.update(summary, statuses=counts, workers=DRAIN_WORKERS, dispatch_many_s=queued_in)
    result["all_delivered_once"] = (
        counts.get(DeliveryStatus.DELIVERED) == n
        and summary["attempt_rows"] == n
        and summary["distinct_deliveries"] == n
    )
    say(
        f"   -> drained in {result['wall_s']:.1f} s from start ({n / result['wall_s']:.0f}/s); "
        f"all delivered once: {result['all_delivered_once']}"
    )
    return result
