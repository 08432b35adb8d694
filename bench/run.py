"""The benchmark suite: ``.venv/bin/python bench/run.py [--quick] [--only NAME] [--profile]``.

Starts its own receivers on 127.0.0.1 (nginx ``return 200`` when nginx is installed, else a raw
asyncio server; the asyncio server always for the 100 ms receiver), runs our worker processes
(``python worker.py``) and the RQ / HTTP baselines against the same Redis (DB 4) and the same
PostgreSQL database (``bench``), and prints one table. Every ratio compares figures of the same
run. Results go to ``bench/results/latest.{md,json}`` (and ``quick.*`` or ``full.*``), the
slow-receiver chart to ``bench/results/slow_receivers.png``; a full run also refreshes the
table in ``bench/README.md``.

Scenarios (``--only`` takes one of these names; each is ``bench/scenarios/<name>.py``):

* ``worker``   per worker process, instant receiver: ours vs RQ's no-op floor, the naive forking
  worker with ``requests.post``, and a bare ``requests.Session`` loop.
* ``slow``     receiver answering after 100 ms: 1, 4, 16, 32 deliveries in flight at once, as
  ceil(N / 16) worker processes with N threads between them (``worker.threads``).
* ``dispatch`` ``dispatch()`` latency and ``dispatch_many`` throughput, SQLite and PostgreSQL.
* ``drain``    a backlog of 20,000 deliveries (2,000 with ``--quick``) drained by 4 workers.
* ``cli_startup`` ``dispatcher --help`` and ``dispatcher log show`` start-up, warm bytecode cache.
* ``encryption`` the cost of storage keys: ``dispatch()`` and one worker, without and with one.
* ``ordering`` end-to-end latency at 20 events/s (unordered, ordered), a backlog to an ordered
  endpoint over 1,000 and 10 keys against unordered, and the cost of an idempotent repeat.
* ``console``  the operator console's pages over 1,000,000 deliveries (100,000 with ``--quick``),
  SQLite and PostgreSQL: p50 / p95 server time per page.
* ``network``  worker hosts as network namespaces behind a 2 ms proxy: deliveries/s with 1, 2, 3
  hosts to a 50 ms receiver, with CPU; the Sentinel failover gap, 3 times (skipped, with the
  reason, where namespaces or ``redis-sentinel`` are missing).
* ``oauth2``   issue 24: 4 workers deliver 2,000 (400 with ``--quick``) to a key-only and to an
  oauth2 endpoint (tokens live 60 s), alternating: deliveries/s, the ratio, token requests.
* ``breaker``  issue 25: 4 workers deliver 2,000 (400 with ``--quick``) with ``delivery.breaker``
  on and off, alternating: deliveries/s, the ratio, worker CPU; then POSTs reaching a partner
  that answers 503 to all, breaker on and off; and one endpoints re-read timed.
* ``api``      issue 26: ``dispatcher api --workers 2`` on PostgreSQL, no workers: ``POST /v1/events``
  events/s from 64 keep-alive clients, and p50 / p95 / p99 at 200 events/s open loop (py-spy on
  the API's workers when the throughput misses 1,000/s).
* ``telemetry`` issue 27: 4 workers deliver 2,000 (400 with ``--quick``) with traces off, on
  (``sample_ratio: 1.0``, to an OTLP sink the benchmark starts) and with the code before issue 27
  (``BENCH_BASE``, default commit 89d06c0), rotating: deliveries/s, the ratios, worker CPU, the spans
  exported; then ``dispatch()`` and ``dispatch_many`` in the same three modes.

This file is the entry point only: the machinery is ``bench/harness/``, the scenarios
``bench/scenarios/``, the markdown, targets, chart and README table ``bench/report.py``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/ of this checkout, before BENCH_CODE

import redis

from bench.harness import FULL, QUICK, RESULTS, SCENARIOS, Sizes, say
from bench.harness.processes import Processes, start_instant_receiver
from bench.harness.services import create_database, flush_redis, machine
from bench.report import chart, render, update_readme


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: under 3 minutes")
    parser.add_argument("--only", choices=SCENARIOS, help="run one scenario")
    parser.add_argument("--profile", action="store_true", help="also profile one worker with py-spy")
    return parser.parse_args(argv)


def run_scenarios(results: dict[str, Any], chosen: list[str], profile: bool, sizes: Sizes, tmp: Path) -> None:
    """Starts the instant receiver if a chosen scenario needs it, describes the machine, then
    runs each scenario (and the profile) into ``results``; stops every process and empties
    Redis DB 4 at the end, however it ends."""
    procs = Processes(tmp)
    say(f"working directory (process logs): {tmp}")
    receiver_kind = None
    try:
        flush_redis()
        url = None
        if {"worker", "dispatch", "drain", "encryption", "ordering", "telemetry"} & set(chosen) or profile:
            url, receiver_kind = start_instant_receiver(procs, tmp)
            say(f"instant receiver: {receiver_kind} at {url}")
        results["machine"] = machine(receiver_kind)
        say("machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()))
        for name in chosen:
            scenario = importlib.import_module(f"bench.scenarios.{name}")
            results[name] = scenario.run(procs, tmp, url, sizes)
        if profile:
            from bench.scenarios.profile import profile_worker

            results["profile"] = profile_worker(procs, tmp, url, max(1000, sizes.ours))
    finally:
        procs.close()
        try:
            flush_redis()
        except redis.RedisError as exc:
            say(f"could not flush Redis DB 4 at the end: {exc}")


def write_results(results: dict[str, Any], quick: bool, only: str | None) -> str:
    """``latest.{md,json}`` and ``<quick|full>[-<only>].{md,json}``, the chart, and on a full run
    the README's table; returns the markdown."""
    markdown = render(results)
    stem = "quick" if quick else "full"
    if only:
        stem += f"-{only}"
    for name in ("latest", stem):
        (RESULTS / f"{name}.md").write_text(markdown)
        (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    if "slow" in results:
        chart(results["slow"], RESULTS / "slow_receivers.png", results["machine"]["nproc"])
    if not quick and not only:
        update_readme(markdown)
    return markdown


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    chosen = [args.only] if args.only else list(SCENARIOS)
    command = " ".join(
        [".venv/bin/python", "bench/run.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)]
    )
    mode = ("quick" if args.quick else "full") + (f", only {args.only}" if args.only else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": command,
        "mode": mode,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sizes": asdict(sizes),
    }
    create_database()
    tmp = Path(tempfile.mkdtemp(prefix="dispatcher-bench-"))
    run_scenarios(results, chosen, args.profile, sizes, tmp)
    results["elapsed_s"] = time.perf_counter() - started
    markdown = write_results(results, args.quick, args.only)
    shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
