"""Scenario 2, a receiver answering after 100 ms: 1, 4, 16, 32 deliveries in flight at once, as
ceil(N / 16) worker processes with N threads between them (``worker.threads``), and for
comparison 16 and 32 processes of one thread each. Throughput over a window, against N × 10/s;
memory and CPU of the workers from ``/proc``."""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from rq import Queue, Worker

from bench.harness import PG_URL, QUEUE_NAME, SLOW_DELAY, THREADS_PER_PROCESS, Sizes, say
from bench.harness.driver import (
    db_engine,
    delivered_count,
    delivery_counts,
    driver_runtime,
    our_config,
    queue_backlog,
    reset_database,
)
from bench.harness.processes import Processes, our_worker, start_slow_receiver, tail
from bench.harness.procfs import children_of, cpu_seconds, pss_kib, rss_kib
from bench.harness.services import flush_redis, redis_client


def wait_registered(conn: redis.Redis, workers: list[subprocess.Popen], n: int, timeout: float) -> float:
    queue = Queue(QUEUE_NAME, connection=conn)
    started = time.perf_counter()
    while Worker.count(connection=conn, queue=queue) < n:
        dead = [p for p in workers if p.poll() is not None]
        if dead:
            raise RuntimeError(f"a worker exited with {dead[0].returncode}:\n{tail(dead[0])}")
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"only {Worker.count(connection=conn, queue=queue)} of {n} workers started")
        time.sleep(0.1)
    return time.perf_counter() - started


def layout(concurrency: int, processes_only: bool = False) -> tuple[int, int]:
    """(processes, threads per process) for ``concurrency`` deliveries in flight at once."""
    if processes_only:
        return concurrency, 1
    processes = -(-concurrency // THREADS_PER_PROCESS)
    return processes, concurrency // processes


def measure_window(
    conn: redis.Redis, engine: sa.Engine, workers: list[subprocess.Popen], window: float
) -> dict[str, Any]:
    """Delivered count and CPU of the workers (and what they forked) at the start and the end of
    ``window`` seconds; their RSS, PSS and helpers' RSS in the middle."""
    queue_key = f"rq:queue:{QUEUE_NAME}"
    pids = {p.pid for p in workers}
    tree = pids | set(children_of(pids))
    c0, cpu0, t0 = delivered_count(engine), sum(cpu_seconds(p) for p in tree), time.perf_counter()
    time.sleep(window / 2)
    rss = [rss_kib(p.pid) for p in workers]
    pss = [pss_kib(p.pid) for p in workers]
    helpers = children_of(pids)
    helper_rss = [rss_kib(p) for p in helpers]
    time.sleep(window / 2)
    tree |= set(helpers)
    c1, cpu1, t1 = delivered_count(engine), sum(cpu_seconds(p) for p in tree), time.perf_counter()
    left_end = conn.llen(queue_key)
    alive = sum(p.poll() is None for p in workers)
    return {
        "delivered": c1 - c0,
        "seconds": t1 - t0,
        "cpu": cpu1 - cpu0,
        "rss": rss,
        "pss": pss,
        "helpers": helpers,
        "helper_rss": helper_rss,
        "left_end": left_end,
        "alive": alive,
    }


def round_result(
    w: dict[str, Any], n: int, threads: int, processes_only: bool, startup: float, counts: dict[str, int]
) -> dict[str, Any]:
    """One round's JSON object from its window (:func:`measure_window`)."""
    ideal = n * threads / SLOW_DELAY
    delivered, seconds, cpu = w["delivered"], w["seconds"], w["cpu"]
    rss, pss, helper_rss = w["rss"], w["pss"], w["helper_rss"]
    rate = delivered / seconds
    return {
        "concurrency": n * threads,
        "processes_only": processes_only,
        "workers": n,
        "threads": threads,
        "rate": rate,
        "ideal": ideal,
        "ratio": rate / ideal,
        "window_s": seconds,
        "delivered_in_window": delivered,
        "startup_s": startup,
        "queue_left_at_end": w["left_end"],
        "starved": w["left_end"] == 0,
        "alive_at_end": w["alive"],
        "rss_mib_mean": statistics.mean(rss) / 1024,
        "rss_mib_max": max(rss) / 1024,
        "pss_mib_mean": statistics.mean(pss) / 1024,
        "total_rss_mib": (sum(rss) + sum(helper_rss)) / 1024,
        "helper_processes": len(w["helpers"]),
        "helper_rss_mib": sum(helper_rss) / 1024,
        "cpu_ms_per_delivery": cpu * 1000 / delivered if delivered else None,
        "cpu_cores_busy": cpu / seconds,
        "statuses_after": counts,
    }


def slow_round(
    procs: Processes, tmp: Path, url: str, concurrency: int, sizes: Sizes, processes_only: bool = False
) -> dict:
    flush_redis()
    reset_database(PG_URL)
    n, threads = layout(concurrency, processes_only)
    config, raw = our_config(tmp, f"slow{concurrency}", url, PG_URL, threads=threads)
    ideal = n * threads / SLOW_DELAY
    need = int(ideal * (sizes.slow_settle + sizes.slow_window) * 1.5) + 100
    conn = redis_client()
    queue_key = f"rq:queue:{QUEUE_NAME}"
    engine = db_engine(PG_URL)
    with driver_runtime(raw):
        queue_backlog(need)
        workers = [our_worker(procs, config, f"slow{n}-{i}", burst=False) for i in range(n)]
        try:
            startup = wait_registered(conn, workers, n, timeout=60 + 5 * n)
            left = conn.llen(queue_key)
            if left < need:  # top up what was delivered while the others started
                queue_backlog(need - left)
            time.sleep(sizes.slow_settle)
            window = measure_window(conn, engine, workers, sizes.slow_window)
        finally:
            procs.stop(workers, grace=30)
    counts = delivery_counts(engine)
    engine.dispose()
    conn.close()
    return round_result(window, n, threads, processes_only, startup, counts)


def run(procs: Processes, tmp: Path, url: str | None, sizes: Sizes) -> dict:
    """Every round on its own slow receiver (``url``, the instant one, is not used)."""
    say(f"2. slow receivers ({SLOW_DELAY * 1000:.0f} ms), concurrent deliveries {list(sizes.slow_workers)}")
    slow_url = start_slow_receiver(procs)
    rounds = []
    plan = [(c, False) for c in sizes.slow_workers] + [(c, True) for c in sizes.slow_processes_only]
    for concurrency, processes_only in plan:
        n, threads = layout(concurrency, processes_only)
        say(f"   {concurrency} at once: {n} worker process(es) × {threads} thread(s)")
        r = slow_round(procs, tmp, slow_url, concurrency, sizes, processes_only)
        say(
            f"   -> {r['rate']:.1f}/s of ideal {r['ideal']:.0f}/s ({r['ratio']:.2f}), "
            f"RSS {r['rss_mib_mean']:.0f} MiB/worker, started in {r['startup_s']:.1f} s"
        )
        rounds.append(r)
    flush_redis()
    return {"delay_ms": SLOW_DELAY * 1000, "rounds": rounds}
