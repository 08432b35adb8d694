"""Scenario 3, in the benchmark process, with SQLite (a file in the temp dir) and PostgreSQL:
``dispatch()`` one call at a time, each timed (p50, p99, events/s), then ``dispatch_many`` in
batches of 500. One endpoint, so one delivery per event; each call includes the durable write
and the Redis enqueue."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.harness import BATCH, EVENT, PG_URL, Sizes, say
from bench.harness.driver import driver_runtime, our_config, reset_database, sample_data
from bench.harness.processes import Processes
from bench.harness.services import flush_redis
from dispatcher import dispatch, dispatch_many


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def dispatch_round(
    tmp: Path, label: str, database_url: str, url: str, sizes: Sizes, extra: dict | None = None
) -> dict:
    flush_redis()
    reset_database(database_url)
    _config, raw = our_config(tmp, f"dispatch-{label}", url, database_url, extra=extra)
    data = sample_data()
    with driver_runtime(raw):
        for _ in range(30):
            dispatch(EVENT, data)
        times = []
        for _ in range(sizes.dispatch_calls):
            started = time.perf_counter()
            dispatch(EVENT, data)
            times.append(time.perf_counter() - started)
        bulk_started = time.perf_counter()
        for _ in range(sizes.dispatch_batches):
            dispatch_many(EVENT, [data] * BATCH)
        bulk = time.perf_counter() - bulk_started
    flush_redis()
    return {
        "calls": sizes.dispatch_calls,
        "p50_ms": percentile(times, 0.50) * 1000,
        "p99_ms": percentile(times, 0.99) * 1000,
        "mean_ms": statistics.mean(times) * 1000,
        "events_per_s": len(times) / sum(times),
        "bulk_events": sizes.dispatch_batches * BATCH,
        "bulk_events_per_s": sizes.dispatch_batches * BATCH / bulk,
    }


def run(procs: Processes, tmp: Path, url: str | None, sizes: Sizes) -> dict:
    """SQLite, then PostgreSQL; no process is started (``procs`` is not used)."""
    assert url is not None, "the dispatch scenario needs the instant receiver"
    say("3. dispatch")
    out = {}
    for label, database_url in (("sqlite", f"sqlite:///{tmp}/dispatch.db"), ("postgresql", PG_URL)):
        r = dispatch_round(tmp, label, database_url, url, sizes)
        say(
            f"   {label}: dispatch() p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms, "
            f"{r['events_per_s']:.0f}/s; dispatch_many {r['bulk_events_per_s']:.0f}/s"
        )
        out[label] = r
    return out
