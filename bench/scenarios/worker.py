"""Scenario 1, per worker process with an instant receiver: ours (PostgreSQL and SQLite) vs RQ's
no-op floor, the naive forking worker with ``requests.post``, and a bare ``requests.Session``
loop, each measured by its queue (:func:`~bench.harness.services.watch_drain`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from rq import Queue

from bench.harness import KEY, PG_URL, QUEUE_NAME, REDIS_URL, RQ_QUEUE_NAME, Sizes, say
from bench.harness.driver import (
    attempt_summary,
    db_engine,
    delivery_counts,
    driver_runtime,
    our_config,
    queue_backlog,
    reset_database,
    sample_body,
)
from bench.harness.processes import Processes, our_worker, tail
from bench.harness.procfs import load_average
from bench.harness.services import flush_redis, redis_client, watch_drain
from dispatcher.vocabulary import DeliveryStatus


def bench_ours_burst(
    procs: Processes, tmp: Path, url: str, database_url: str, label: str, n: int, extra: dict | None = None
) -> dict:
    flush_redis()
    reset_database(database_url)
    config, raw = our_config(tmp, label, url, database_url, extra=extra)
    with driver_runtime(raw):
        queue_backlog(n)
    conn = redis_client()
    worker = our_worker(procs, config, f"ours-{label}", burst=True)
    try:
        result = watch_drain(conn, f"rq:queue:{QUEUE_NAME}", [worker], n, timeout=max(120, n / 5))
    finally:
        procs.stop([worker])
    engine = db_engine(database_url)
    counts = delivery_counts(engine)
    result.update(attempt_summary(engine), statuses=counts)
    engine.dispose()
    if counts.get(DeliveryStatus.DELIVERED) != n:
        raise RuntimeError(f"ours ({label}): expected {n} delivered, got {counts}")
    result["db_rate"] = n / result["db_span_s"] if result.get("db_span_s") else None
    conn.close()
    return result


def bench_rq(procs: Processes, kind: str, function: str, args: tuple, n: int) -> dict:
    flush_redis()
    conn = redis_client()
    queue = Queue(RQ_QUEUE_NAME, connection=conn)
    datas = [Queue.prepare_data(function, args=args, result_ttl=0) for _ in range(n)]
    for i in range(0, n, 1000):
        with conn.pipeline() as pipe:
            queue.enqueue_many(datas[i : i + 1000], pipeline=pipe)
            pipe.execute()
    if conn.llen(queue.key) != n:
        raise RuntimeError(f"expected {n} queued jobs, found {conn.llen(queue.key)}")
    worker = procs.start(
        f"rq-{kind}", [sys.executable, "-m", "bench.rq_worker", REDIS_URL, RQ_QUEUE_NAME, kind]
    )
    try:
        result = watch_drain(conn, queue.key, [worker], n, timeout=max(120, n / 5))
    finally:
        procs.stop([worker])
    failed = queue.failed_job_registry.count
    if failed:
        raise RuntimeError(f"rq {kind}: {failed} jobs failed:\n{tail(worker)}")
    conn.close()
    return result


def bench_ceiling(url: str, body: bytes, n: int) -> dict:
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Key": KEY,
        "User-Agent": "bench",
    }
    with requests.Session() as session:
        for _ in range(50):
            session.post(url, data=body, headers=headers, timeout=5).raise_for_status()
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(n):
            response = session.post(url, data=body, headers=headers, timeout=5)
            if response.status_code != 200:
                raise RuntimeError(f"ceiling: receiver answered {response.status_code}")
        elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {
        "n": n,
        "rate": n / elapsed,
        "steady_s": elapsed,
        "wall_s": elapsed,
        "cpu_ms_per_job": cpu * 1000 / n,
        "load_average_1m": load_average(),
    }


def runners(procs: Processes, tmp: Path, url: str, sizes: Sizes) -> list[tuple[str, str, Callable[[], dict]]]:
    """(key, label, measure) of each runner, in the order a round runs them."""
    _path, raw = our_config(tmp, "body", url, PG_URL)
    body = sample_body(raw)
    return [
        (
            "ours_pg",
            f"ours, PostgreSQL: {sizes.ours} deliveries, one burst worker",
            lambda: bench_ours_burst(procs, tmp, url, PG_URL, "w-pg", sizes.ours),
        ),
        (
            "ours_sqlite",
            f"ours, SQLite: {sizes.ours} deliveries, one burst worker",
            lambda: bench_ours_burst(procs, tmp, url, f"sqlite:///{tmp}/worker.db", "w-sqlite", sizes.ours),
        ),
        (
            "floor",
            f"RQ floor: SimpleWorker, no-op job, {sizes.floor} jobs",
            lambda: bench_rq(procs, "simple", "bench.jobs.noop", (), sizes.floor),
        ),
        (
            "naive",
            f"naive: forking rq.Worker + requests.post, {sizes.naive} jobs",
            lambda: bench_rq(procs, "fork", "bench.jobs.naive_post", (url, body, KEY), sizes.naive),
        ),
        (
            "ceiling",
            f"HTTP ceiling: requests.Session loop, {sizes.ceiling} POSTs",
            lambda: bench_ceiling(url, body, sizes.ceiling),
        ),
    ]


def ratios(out: dict[str, Any]) -> dict[str, float]:
    ours = out["ours_pg"]["rate"]
    return {
        "ours_over_floor": ours / out["floor"]["rate"],
        "ours_over_naive": ours / out["naive"]["rate"],
        "ours_over_ceiling": ours / out["ceiling"]["rate"],
        "sqlite_over_floor": out["ours_sqlite"]["rate"] / out["floor"]["rate"],
        "sqlite_over_naive": out["ours_sqlite"]["rate"] / out["naive"]["rate"],
        "sqlite_over_ceiling": out["ours_sqlite"]["rate"] / out["ceiling"]["rate"],
    }


def run(procs: Processes, tmp: Path, url: str | None, sizes: Sizes) -> dict:
    """Each runner ``sizes.repeats`` times, interleaved (ours, ours SQLite, floor, naive, ceiling,
    then again), keeping each runner's best run: on a shared machine the least disturbed one."""
    assert url is not None, "the worker scenario needs the instant receiver"
    say(f"1. per worker process, instant receiver (best of {sizes.repeats}, interleaved)")
    plan = runners(procs, tmp, url, sizes)
    runs: dict[str, list[dict]] = {key: [] for key, _label, _fn in plan}
    for round_ in range(sizes.repeats):
        for key, label, fn in plan:
            say(f"   [{round_ + 1}/{sizes.repeats}] {label}")
            result = fn()
            runs[key].append(result)
            say(f"   -> {result['rate']:.0f}/s, {result.get('cpu_ms_per_job') or 0:.1f} CPU ms/job")
    out: dict[str, Any] = {}
    for key, results in runs.items():
        best = dict(max(results, key=lambda r: r["rate"]))
        best["all_rates"] = [r["rate"] for r in results]
        out[key] = best
    out["ratios"] = ratios(out)
    out["repeats"] = sizes.repeats
    flush_redis()
    return out
