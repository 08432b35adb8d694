"""Scenario 7, per-key ordering and idempotent dispatch (issue 14), PostgreSQL:

* **latency**: one backend process dispatching 20 events/s to one worker, from ``dispatch()``
  being called to the partner having read the POST (a recording receiver), p50 / p95 / p99,
  unordered and ordered (20 keys in turn);
* **backlog**: a backlog of deliveries over 1,000 keys and over 10 keys, to an ordered endpoint,
  drained by 4 workers, against the same backlog unordered (rate from the first claim to the
  last record, read from the database);
* **idempotency**: ``dispatch()`` p50 with a new idempotency key each call, and repeating those
  keys, against ``dispatch()`` without one.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import DRAIN_WORKERS, EVENT, KEY, PG_URL, Sizes, say
from bench.harness.driver import (
    attempt_summary,
    db_engine,
    driver_runtime,
    our_config,
    reset_database,
    sample_data,
)
from bench.harness.processes import Processes, free_port, our_worker, wait_for_port
from bench.harness.services import flush_redis
from bench.scenarios.dispatch import percentile
from dispatcher import dispatch, dispatch_many, store
from dispatcher.vocabulary import FINAL_STATUSES

RATE = 20
"""Events per second in the latency run."""


def endpoint(url: str, ordered: bool) -> dict[str, Any]:
    return {"endpoints": [{"name": "bench", "url": url, "key": KEY, "ordered": ordered}]}


def latency(procs: Processes, tmp: Path, ordered: bool, events: int) -> dict[str, Any]:
    label = "ordered" if ordered else "unordered"
    record = tmp / f"arrivals-{label}.txt"
    port = free_port()
    receiver = procs.start(
        f"recorder-{label}", [sys.executable, "-m", "bench.receiver", str(port), "0", str(record)]
    )
    wait_for_port(port, receiver)
    url = f"http://127.0.0.1:{port}/hook"
    flush_redis()
    reset_database(PG_URL)
    config, raw = our_config(tmp, f"latency-{label}", url, PG_URL, extra=endpoint(url, ordered))
    worker = our_worker(procs, config, f"latency-{label}", burst=False)
    data = sample_data()
    sent: dict[str, float] = {}
    try:
        with driver_runtime(raw):
            _wait_ready(record, lambda: dispatch(EVENT, data, ordering_key="warm-up")[0])
            record.write_text("")
            started = time.perf_counter()
            for n in range(events):
                time.sleep(max(0.0, started + n / RATE - time.perf_counter()))
                at = time.time()
                (request_id,) = dispatch(EVENT, data, ordering_key=f"key-{n % 20}" if ordered else None)
                sent[request_id] = at
            arrived = _arrivals(record, set(sent), timeout=30)
    finally:
        procs.stop([worker, receiver])
    waits = sorted((arrived[rid] - sent[rid]) * 1000 for rid in sent)
    return {
        "events": events,
        "rate": RATE,
        "p50_ms": percentile(waits, 0.50),
        "p95_ms": percentile(waits, 0.95),
        "p99_ms": percentile(waits, 0.99),
        "max_ms": waits[-1],
    }


def _wait_ready(record: Path, send: Any) -> None:
    """Sends one event and waits until the receiver has it: the worker is up and connected."""
    request_id = send()
    _arrivals(record, {request_id}, timeout=60)


def _arrivals(record: Path, wanted: set[str], timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        seen: dict[str, float] = {}
        for line in record.read_text().splitlines():
            rid, _, at = line.partition(" ")
            if rid in wanted and rid not in seen:
                seen[rid] = float(at)
        if len(seen) == len(wanted):
            return seen
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(wanted) - len(seen)} of {len(wanted)} deliveries never arrived")
        time.sleep(0.1)


def backlog(procs: Processes, tmp: Path, url: str, n: int, keys: int | None) -> dict[str, Any]:
    """``n`` deliveries queued while no worker runs (over ``keys`` ordering keys, or unordered),
    then drained by :data:`DRAIN_WORKERS` workers."""
    label = f"keys-{keys}" if keys else "unordered"
    flush_redis()
    reset_database(PG_URL)
    config, raw = our_config(tmp, f"backlog-{label}", url, PG_URL, extra=endpoint(url, keys is not None))
    data = sample_data()
    with driver_runtime(raw):
        for start in range(0, n, 500):
            count = min(500, n - start)
            ordering = [f"key-{(start + i) % keys}" for i in range(count)] if keys else None
            dispatch_many(EVENT, [data] * count, ordering_keys=ordering)
    engine = db_engine(PG_URL)
    workers = [our_worker(procs, config, f"backlog-{label}-{i}", burst=False) for i in range(DRAIN_WORKERS)]
    started = time.perf_counter()
    try:
        _wait_final(engine, n, timeout=max(300, n / 10))
        wall = time.perf_counter() - started
    finally:
        procs.stop(workers)
    summary = attempt_summary(engine)
    engine.dispose()
    flush_redis()
    return {
        "n": n,
        "keys": keys,
        "workers": DRAIN_WORKERS,
        "wall_s": wall,
        "rate": n / summary["db_span_s"],
        "db_span_s": summary["db_span_s"],
        "attempt_rows": summary["attempt_rows"],
    }


def _wait_final(engine: Any, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while store.count(engine, store.Selection(statuses=FINAL_STATUSES)) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"backlog not drained within {timeout:.0f} s")
        time.sleep(0.2)


def idempotency(tmp: Path, url: str, calls: int) -> dict[str, Any]:
    """p50 of ``dispatch()`` without a key, with a new key, and repeating those keys."""
    flush_redis()
    reset_database(PG_URL)
    _config, raw = our_config(tmp, "idempotency", url, PG_URL)
    data = sample_data()
    times: dict[str, list[float]] = {"no key": [], "first, new key": [], "repeat": []}
    with driver_runtime(raw):
        for _ in range(30):
            dispatch(EVENT, data)
        for label, key in (("no key", None), ("first, new key", "first"), ("repeat", "first")):
            for n in range(calls):
                started = time.perf_counter()
                dispatch(EVENT, data, idempotency_key=None if key is None else f"{key}-{n}")
                times[label].append(time.perf_counter() - started)
    flush_redis()
    return {label: {"p50_ms": statistics.median(t) * 1000, "calls": len(t)} for label, t in times.items()}


def run(procs: Processes, tmp: Path, url: str | None, sizes: Sizes) -> dict:
    assert url is not None, "the ordering scenario needs the instant receiver"
    events = 200 if sizes.drain < 10000 else 600
    n = 2000 if sizes.drain < 10000 else 10000
    say(f"7. ordering and idempotency: latency at {RATE}/s ({events} events), backlog of {n}")
    out: dict[str, Any] = {"latency": {}, "backlog": {}}
    for ordered in (False, True):
        r = out["latency"]["ordered" if ordered else "unordered"] = latency(procs, tmp, ordered, events)
        say(
            f"   latency {'ordered' if ordered else 'unordered'}: p50 {r['p50_ms']:.1f} ms p95 {r['p95_ms']:.1f} p99 {r['p99_ms']:.1f}"
        )
    for keys in (None, 1000, 10):
        r = out["backlog"][str(keys or "unordered")] = backlog(procs, tmp, url, n, keys)
        say(f"   backlog {keys or 'unordered'}: {r['rate']:.0f} deliveries/s ({r['db_span_s']:.1f} s)")
    out["idempotency"] = idempotency(tmp, url, calls=sizes.dispatch_calls // 4)
    say("   idempotency: " + ", ".join(f"{k} {v['p50_ms']:.2f} ms" for k, v in out["idempotency"].items()))
    return out
