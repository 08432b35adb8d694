"""A backlog for one rate-limited endpoint: ``.venv/bin/python bench/rate_limited.py [--n N] [--rate R]``.

Queues N deliveries (default 1,000) for an endpoint with ``rate_per_second: R`` (default 20),
runs one worker process (16 threads, PostgreSQL database ``bench``, Redis DB 4) until all are
delivered, and prints how long it took, the database row updates per delivery (a claim, a
give-back or a record is one each: 2 is the floor) and the worker's CPU per delivery. Every
delivery the limit turns away costs a claim and a give-back, so the updates show how often
deliveries were deferred. ``BENCH_CODE=/path/to/checkout`` measures another checkout's
``dispatcher/`` (as ``bench/run.py`` does). Results also go to
``bench/results/rate_limited-latest.md``; ``bench/results/rate_limited.md`` compares two runs.
Runs on its own, not from ``bench/run.py``; ``bench/rate_limited.py`` is its entry point.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import yaml

from bench.harness import PG_URL, RESULTS, say
from bench.harness.driver import (
    db_engine,
    delivered_count,
    driver_runtime,
    our_config,
    queue_backlog,
    reset_database,
)
from bench.harness.processes import Processes, our_worker, start_instant_receiver, tail
from bench.harness.procfs import children_of, cpu_seconds
from bench.harness.services import code_under_test, flush_redis

LATEST = RESULTS / "rate_limited-latest.md"


def row_updates(engine: sa.Engine) -> int:
    """Rows updated in the deliveries table since the server started (the worker must have
    exited: a backend reports its counts when it ends)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            sa.text("SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'webhook_deliveries'")
        ).scalar_one()


def measure(n: int, rate: float) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-rate-"))
    procs = Processes(tmp)
    try:
        url, _kind = start_instant_receiver(procs, tmp)
        flush_redis()
        reset_database(PG_URL)
        path, raw = our_config(tmp, "limited", url, PG_URL)
        raw["endpoints"][0]["rate_per_second"] = rate
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        with driver_runtime(raw):
            queue_backlog(n)
        engine = db_engine(PG_URL)
        before = row_updates(engine)
        worker = our_worker(procs, path, "limited", burst=False)
        started = time.monotonic()
        delivered = 0
        while delivered < n:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{tail(worker)}")
            if time.monotonic() - started > n / rate * 3 + 60:
                raise RuntimeError(f"only {delivered} of {n} delivered")
            time.sleep(0.25)
            delivered = delivered_count(engine)
        took = time.monotonic() - started
        cpu = cpu_seconds(worker.pid) + sum(cpu_seconds(c) for c in children_of({worker.pid}))
        procs.stop([worker])
        time.sleep(0.5)
        updates = row_updates(engine) - before
        engine.dispose()
        return {"took": took, "rate": n / took, "updates": updates / n, "cpu_ms": cpu / n * 1000}
    finally:
        procs.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20)
    args = parser.parse_args(argv)
    code = code_under_test()
    say(f"{args.n} deliveries for an endpoint limited to {args.rate:g}/s, one worker; code {code}")
    got = measure(args.n, args.rate)
    lines = [
        f"- command: `.venv/bin/python bench/rate_limited.py --n {args.n} --rate {args.rate:g}`",
        f"- date: {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}; code under test: {code}",
        "",
        "| deliveries | limit /s | drained in (s) | deliveries/s | row updates per delivery (floor 2)"
        " | worker CPU ms per delivery |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {args.n} | {args.rate:g} | {got['took']:.1f} | {got['rate']:.1f} | {got['updates']:.1f}"
        f" | {got['cpu_ms']:.1f} |",
    ]
    text = "\n".join(lines)
    print(text)
    LATEST.parent.mkdir(parents=True, exist_ok=True)
    LATEST.write_text(f"# A backlog for a rate-limited endpoint\n\n{text}\n")
    return 0
