"""Issue 25: what the circuit breaker costs a worker, and what it spares a partner that is down.

Three measurements, all with 4 burst workers (``python worker.py --burst``) on PostgreSQL
(database ``bench``) and Redis DB 4:

1. **Throughput, instant receiver.** N deliveries (2,000; 400 with ``--quick``) queued, then
   drained, with ``delivery.breaker`` on (the default: per delivery one read of the breaker
   before the POST, per attempt one Lua call counting its result) and with ``breaker: false``,
   alternating for :data:`ROUNDS` rounds; the medians of deliveries/s (first claim → last
   record, as the oauth2 scenario measures), of the rate by the queue, and of the workers' CPU
   per delivery, and the ratios on ÷ off.
2. **The endpoints' re-read.** Every worker looks whether the database's endpoints changed at
   most once a second (``Runtime.refresh_endpoints``: one row read). It is the same with the
   breaker on or off, so the rounds above cannot show it: it is timed here on its own, in the
   benchmark process, against the same database with the endpoints imported, and given as the
   share of one core it costs a worker that looks once a second.
3. **A partner that is down.** A partner answering ``503`` to every POST (a child process,
   :func:`serve`, counting the POSTs it reads), ``max_attempts: 1``, one round with the breaker
   on and one with it off: the POSTs that reached the partner, the attempt rows, the statuses
   and the breaker's state at the end. With the breaker on, the deliveries held back wait for
   the probe (30 s later); the burst workers leave them scheduled and exit.

Every run starts from an empty Redis DB 4 and an empty database, with fresh workers.
"""

from __future__ import annotations

import json
import signal
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import Popen
from typing import Any

import requests
import sqlalchemy as sa

from bench.harness import DRAIN_WORKERS, PG_URL, QUEUE_NAME, QUICK, ROOT, Sizes, say
from bench.harness.driver import (
    attempt_summary,
    db_engine,
    delivery_counts,
    driver_runtime,
    our_config,
    queue_backlog,
    reset_database,
)
from bench.harness.processes import Processes, child_env, our_worker, start_instant_receiver, tail
from bench.harness.procfs import load_average
from bench.harness.services import flush_redis, redis_client, watch_drain
from dispatcher import store
from dispatcher.vocabulary import DeliveryStatus

DELIVERIES = {"quick": 400, "full": 2000}
ROUNDS = {"quick": 3, "full": 8}
"""Runs of each mode, alternating: runs of one mode vary by ±15 % on the shared 2-core machine,
so fewer rounds cannot tell a 5 % difference."""
DOWN_DELIVERIES = {"quick": 400, "full": 2000}
REREADS = {"quick": 300, "full": 2000}
"""Endpoint re-reads timed in a row for the re-read's cost."""
MODES = ("on", "off")
ENDPOINT = "bench"
"""The endpoint's name in the configuration the harness writes."""
STATS_PATH = "/bench/stats"
DELIVERY = {"timeout": 5, "max_attempts": 3, "backoff": [1]}
"""The harness's ``delivery`` settings, which the modes change one key of."""


def delivery(mode: str, max_attempts: int = 3) -> dict[str, Any]:
    """``delivery`` for a mode: the breaker left at its default (on), or ``breaker: false``."""
    settings: dict[str, Any] = {**DELIVERY, "max_attempts": max_attempts}
    if mode == "off":
        settings["breaker"] = False
    return {"delivery": settings}


# --- the partner that is down, in its child process --------------------------------------------


class DownHandler(BaseHTTPRequestHandler):
    """Answers ``503`` to every POST (its body read in full, kept connection) and counts them;
    ``GET /bench/stats`` is the count as JSON."""

    protocol_version = "HTTP/1.1"
    posts = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with DownHandler.lock:
            DownHandler.posts += 1
        self.answer(503, b"down")

    def do_GET(self) -> None:
        if self.path != STATS_PATH:
            self.answer(404, b"{}")
            return
        with DownHandler.lock:
            posts = DownHandler.posts
        self.answer(200, json.dumps({"posts": posts}).encode())

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class DownServer(ThreadingHTTPServer):
    request_queue_size = 1024
    """4 workers × 16 sender threads connect at once (the default backlog is 5)."""
    daemon_threads = True


def serve(port_file: Path) -> None:
    """The child process: serves on a free loopback port, writes its base URL to ``port_file``,
    serves until SIGTERM or SIGINT."""
    server = DownServer(("127.0.0.1", 0), DownHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    written = port_file.with_suffix(".tmp")
    written.write_text(json.dumps({"base_url": base_url}))
    written.replace(port_file)
    print(f"listening on {base_url}, answering 503 to every POST", flush=True)
    while not stop.wait(1):
        pass
    server.shutdown()
    server.server_close()


def start_down_partner(procs: Processes, tmp: Path) -> tuple[Popen[bytes], str]:
    """The 503 partner's child process, waited for (15 s at most) and checked; returns it and
    its base URL."""
    port_file = tmp / "partner-down.json"
    env = child_env()
    env["PYTHONPATH"] = str(ROOT)  # this checkout's bench/ (it puts the code under test after)
    cmd = [sys.executable, "-m", "bench.scenarios.breaker", "serve", str(port_file)]
    proc = procs.start("partner-down", cmd, env)
    deadline = time.monotonic() + 15
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"partner-down did not start:\n{tail(proc)}")
        time.sleep(0.05)
    base_url = str(json.loads(port_file.read_text())["base_url"])
    answer = requests.post(f"{base_url}/hook", data=b'{"ping":1}', timeout=5).status_code
    if answer != 503:
        raise RuntimeError(f"partner-down answered {answer} to a POST")
    return proc, base_url


def posts_so_far(base_url: str) -> int:
    response = requests.get(base_url + STATS_PATH, timeout=5)
    response.raise_for_status()
    return int(response.json()["posts"])


# --- one run ---------------------------------------------------------------------------------


def drain_once(
    procs: Processes, tmp: Path, label: str, url: str, n: int, extra: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``n`` deliveries queued, then drained by :data:`DRAIN_WORKERS` burst workers starting
    together: the queue's rate, the database's, the workers' CPU and what the database holds;
    and the configuration they read."""
    flush_redis()
    reset_database(PG_URL)
    config, raw = our_config(tmp, label, url, PG_URL, extra=extra)
    with driver_runtime(raw):
        queue_backlog(n)
    conn = redis_client()
    workers = [our_worker(procs, config, f"{label}-{i}", burst=True) for i in range(DRAIN_WORKERS)]
    try:
        result = watch_drain(conn, f"rq:queue:{QUEUE_NAME}", workers, n, timeout=max(300, n / 10))
    finally:
        procs.stop(workers)
        conn.close()
    engine = db_engine(PG_URL)
    counts, summary = delivery_counts(engine), attempt_summary(engine)
    engine.dispose()
    result.update(summary, statuses=counts, workers=DRAIN_WORKERS)
    result["db_rate"] = n / summary["db_span_s"] if summary.get("db_span_s") else None
    result["all_delivered_once"] = (
        counts.get(DeliveryStatus.DELIVERED) == n
        and summary["attempt_rows"] == n
        and summary["distinct_deliveries"] == n
    )
    return result, raw


def attempt_kinds() -> dict[str, int]:
    """The attempt rows by what they were: ``503``, or the failure kind of one without an answer."""
    a = store.ATTEMPTS.c
    engine = db_engine(PG_URL)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(a.http_status, a.failure, sa.func.count()).group_by(a.http_status, a.failure)
        ).all()
    engine.dispose()
    return {str(status if status is not None else failure): count for status, failure, count in rows}


def breaker_state() -> str:
    """The endpoint's breaker as operators see it (``closed``, ``open until …``, ``half-open``)."""
    from dispatcher.sending import breaker

    conn = redis_client()
    try:
        return breaker.states(conn, [ENDPOINT])[ENDPOINT].text()
    finally:
        conn.close()


def down_once(procs: Processes, tmp: Path, mode: str, base_url: str, n: int) -> dict[str, Any]:
    """One round against the 503 partner with ``max_attempts: 1``: the POSTs it read, and what
    the database and the breaker say afterwards."""
    before = posts_so_far(base_url)
    r, _raw = drain_once(
        procs, tmp, f"breaker-down-{mode}", f"{base_url}/hook", n, delivery(mode, max_attempts=1)
    )
    state = breaker_state() if mode == "on" else "off"
    return {
        "n": n,
        "posts": posts_so_far(base_url) - before,
        "attempt_rows": r["attempt_rows"],
        "attempts": attempt_kinds(),
        "statuses": r["statuses"],
        "breaker": state,
        "wall_s": r["wall_s"],
        "cpu_ms_per_job": r["cpu_ms_per_job"],
        "load_average_1m": r["load_average_1m"],
    }


def reread_cost(raw: dict[str, Any], calls: int) -> dict[str, float]:
    """``Runtime.refresh_endpoints(force=True)`` timed ``calls`` times in a row in this process
    (the endpoints imported and taken once before, so each call is the generation's one-row
    read that finds nothing changed, as a worker's is nearly always): wall and CPU microseconds
    per call, and the share of one core a worker looking once a second spends on it."""
    with driver_runtime(raw) as runtime:
        runtime.refresh_endpoints(force=True)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            runtime.refresh_endpoints(force=True)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "calls": calls,
        "wall_us": wall * 1e6 / calls,
        "cpu_us": cpu * 1e6 / calls,
        "core_share_at_1_per_s": cpu / calls,
        "load_average_1m": load_average(),
    }


# --- the scenario ------------------------------------------------------------------------------


def median(values: list[float | None]) -> float:
    return statistics.median(v or 0.0 for v in values)


def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def summarise(runs: dict[str, list[dict[str, Any]]], n: int) -> dict[str, Any]:
    """Each mode's medians and runs, and the ratios on ÷ off of the medians (and of each round)."""
    out: dict[str, Any] = {"n": n, "workers": DRAIN_WORKERS, "rounds": len(runs["on"])}
    for mode, results in runs.items():
        out[mode] = {
            "rate": median([r["db_rate"] for r in results]),
            "queue_rate": median([r["rate"] for r in results]),
            "cpu_ms_per_job": median([r["cpu_ms_per_job"] for r in results]),
            "load_average_1m": [r["load_average_1m"] for r in results],
            "all_delivered_once": all(r["all_delivered_once"] for r in results),
            "runs": results,
        }
    on, off = out["on"], out["off"]
    out["ratio"] = ratio(on["rate"], off["rate"])
    out["queue_ratio"] = ratio(on["queue_rate"], off["queue_rate"])
    out["cpu_ratio"] = ratio(on["cpu_ms_per_job"], off["cpu_ms_per_job"])
    pairs = zip(on["runs"], off["runs"], strict=True)
    out["round_ratios"] = [ratio(a["db_rate"] or 0.0, b["db_rate"] or 0.0) for a, b in pairs]
    return out


def one_run(r: dict[str, Any]) -> str:
    """One run's figures, for the progress lines."""
    return (
        f"{r['db_rate'] or 0:.0f}/s first claim → last record, {r['rate']:.0f}/s by the queue; worker "
        f"CPU {r['cpu_ms_per_job'] or 0:.2f} ms/delivery; all delivered once: {r['all_delivered_once']}; "
        f"load {r['load_average_1m']:.1f}"
    )


def throughput(procs: Processes, tmp: Path, url: str, size: str) -> dict[str, Any]:
    """On and off, alternating (which goes first alternates too), ``rounds`` times each; then
    the re-read's cost, against the last run's database."""
    n, rounds = DELIVERIES[size], ROUNDS[size]
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    raw: dict[str, Any] = {}
    for round_ in range(rounds):
        for mode in MODES if round_ % 2 == 0 else MODES[::-1]:
            r, raw = drain_once(procs, tmp, f"breaker-{mode}-{round_}", url, n, delivery(mode))
            runs[mode].append(r)
            say(f"   [{round_ + 1}/{rounds}] breaker {mode}: {one_run(r)}")
    out = summarise(runs, n)
    out["reread"] = reread_cost(raw, REREADS[size])
    return out


def down_partner(procs: Processes, tmp: Path, n: int) -> dict[str, Any]:
    """One round each, breaker on then off, against the 503 partner."""
    proc, base_url = start_down_partner(procs, tmp)
    try:
        down = {mode: down_once(procs, tmp, mode, base_url, n) for mode in MODES}
    finally:
        procs.stop([proc])
    for mode, r in down.items():
        say(
            f"   partner down, breaker {mode}: {r['posts']} POSTs reached it of {n} deliveries "
            f"(attempt rows {r['attempt_rows']}: {r['attempts']}, statuses {r['statuses']}, breaker {r['breaker']}, "
            f"{r['wall_s']:.1f} s, load {r['load_average_1m']:.1f})"
        )
    return {"n": n, **down}


def run(procs: Processes, tmp: Path, url: str | None, sizes: Sizes) -> dict[str, Any]:
    """Breaker on and off, alternating, :data:`ROUNDS` times each; the re-read's cost; one round
    each against a partner that is down; every figure printed."""
    size = "quick" if sizes == QUICK else "full"
    n, rounds = DELIVERIES[size], ROUNDS[size]
    receiver = "the run's instant receiver"
    if url is None:
        url, receiver = start_instant_receiver(procs, tmp)
    say(
        f"breaker: {n} deliveries, {DRAIN_WORKERS} burst workers, breaker on vs off, {rounds} rounds alternating"
    )
    out = throughput(procs, tmp, url, size)
    out["receiver"] = receiver
    reread = out["reread"]
    say(
        f"   -> median on {out['on']['rate']:.0f}/s, off {out['off']['rate']:.0f}/s: ratio "
        f"{out['ratio']:.3f} (by the queue {out['queue_ratio']:.3f}; rounds "
        f"{', '.join(f'{x:.2f}' for x in out['round_ratios'])}); worker CPU/delivery on "
        f"{out['on']['cpu_ms_per_job']:.2f} ms, off {out['off']['cpu_ms_per_job']:.2f} ms "
        f"(ratio {out['cpu_ratio']:.3f}); endpoints re-read {reread['wall_us']:.0f} µs wall, "
        f"{reread['cpu_us']:.0f} µs CPU = {reread['core_share_at_1_per_s'] * 100:.3f} % of a core at once a second"
    )
    out["down"] = down_partner(procs, tmp, DOWN_DELIVERIES[size])
    flush_redis()
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "serve":
        raise SystemExit("usage: python -m bench.scenarios.breaker serve PORT_FILE")
    serve(Path(sys.argv[2]))
