"""Scenario 9, worker hosts across a network and the Sentinel failover gap (issue 15 §3):

* **throughput**: 1, 2 and 3 worker hosts, each a Linux network namespace on a bridge
  (:class:`tests.netlab.NetLab`) running ``python worker.py --concurrency 2``, reaching Redis
  (DB 10) and PostgreSQL (``bench``) only through a :class:`tests.netlab.FaultProxy` on the
  bridge's address adding 2 ms each way, delivering a backlog (1,500 events; 300 with
  ``--quick``) to the benchmark's asyncio receiver on the bridge's address answering 200 after
  50 ms. The workers start and register first, then the backlog is queued; the rate is from the
  first delivery to the last as the receiver read them (its record file). CPU over that span
  comes from ``/proc``: all cores (``/proc/stat``) and, per process, the workers (the
  namespaces' pids), the receiver, this process (where the proxies run), redis-server and
  PostgreSQL, so the report can say what saturates.
* **failover**: a Sentinel set (:class:`tests.sentinel.SentinelSet`: primary, replica, three
  Sentinels), two workers on loopback, ``dispatch()`` at 20 events/s from this process; the
  primary is SIGKILLed; seconds from the kill to the Sentinels naming the new primary and to the
  first delivery of an event dispatched after the kill. Three times, each on a fresh set.

Each part is skipped, with a one-line reason, where namespaces cannot be made
(:func:`tests.netlab.unavailable`) or ``redis-sentinel`` is missing.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from rq import Queue, Worker
from sqlalchemy.engine import make_url

from bench.harness import CODE, EVENT, KEY, PG_URL, THREADS_PER_PROCESS, Sizes, say
from bench.harness.driver import db_engine, delivery_counts, driver_runtime, our_config, reset_database
from bench.harness.processes import Processes, child_env, free_port, our_worker, tail
from bench.harness.procfs import CLOCK_TICKS, cpu_seconds
from dispatcher import dispatch, dispatch_many, store
from dispatcher.contract.catalogue import get_event
from dispatcher.errors import DispatcherError
from tests.netlab import FaultProxy, NetLab, unavailable
from tests.sentinel import DOWN_AFTER_MS, SentinelSet, sentinel_binary

REDIS_DB = 10
REDIS_DIRECT = f"redis://127.0.0.1:6379/{REDIS_DB}"
QUEUE = "bench-network"
RECEIVER_DELAY = 0.05
PROXY_DELAY = 0.002
CONCURRENCY = 2
"""Worker processes per host (``worker.py --concurrency``)."""
FAILOVER_RATE = 20
FAILOVER_RUNS = 3
FINAL_WAIT = 300
"""Seconds allowed after the load stops for every event to end delivered (reconcile runs about
once a minute, and re-queues what the killed primary took with it)."""
LATE = 5.0
"""An event delivered more than this many seconds after its ``dispatch()`` is listed as late."""

RECEIVER_SCRIPT = """
import asyncio, signal, sys
from bench.receiver import Receiver

async def main(host, port, delay, record):
    Receiver.delay = delay
    Receiver.record = open(record, "a", encoding="ascii")
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Receiver, host, port, backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
"""
"""``bench/receiver.py``'s protocol served on a given address (it binds 127.0.0.1 itself)."""


# --- Redis DB 10, the receiver, arrivals ------------------------------------------------------


def redis_db10() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_DIRECT)
    if client.connection_pool.connection_kwargs.get("db") != REDIS_DB:
        raise SystemExit(f"refusing to use a Redis DB other than {REDIS_DB}")
    return client


def flush_db10() -> None:
    with redis_db10() as client:
        client.flushdb()


def start_receiver(procs: Processes, host: str, delay: float, record: Path, name: str) -> tuple[Any, str]:
    """The asyncio receiver on ``host``, recording each request's request_id and arrival time."""
    record.write_text("")
    port = free_port_on(host)
    proc = procs.start(
        name, [sys.executable, "-c", RECEIVER_SCRIPT, host, str(port), str(delay), str(record)]
    )
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited with {proc.returncode}:\n{tail(proc)}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"receiver on {host}:{port} did not start:\n{tail(proc)}") from None
            time.sleep(0.05)
    return proc, f"http://{host}:{port}/hook"


def free_port_on(host: str) -> int:
    if host == "127.0.0.1":
        return free_port()
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def arrivals(record: Path) -> dict[str, float]:
    """request_id -> first arrival (``time.time()``) from the receiver's record file."""
    seen: dict[str, float] = {}
    for line in record.read_text().splitlines():
        rid, _, at = line.partition(" ")
        if rid and at and rid not in seen:
            try:
                seen[rid] = float(at)
            except ValueError:
                continue
    return seen


def raw_config(
    name: str, tmp: Path, url: str, redis_url: str, database_url: str, networks: list[str]
) -> dict:
    return {
        "redis_url": redis_url,
        "database_url": database_url,
        "queue_name": QUEUE,
        "process_log": str(tmp / f"logs-{name}" / "send-webhook-request-process.log"),
        "endpoints": [{"name": "bench", "url": url, "key": KEY}],
        "allow_networks": networks,
    }


# --- CPU from /proc ---------------------------------------------------------------------------


def cpu_total_busy() -> float:
    """Busy CPU seconds of all cores since boot (``/proc/stat``: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS


def pids_named(prefix: str, needle: str | None = None) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "comm").read_text().strip().startswith(prefix):
                continue
            if needle and needle not in (entry / "cmdline").read_bytes().decode(errors="replace"):
                continue
        except OSError:
            continue
        found.append(int(entry.name))
    return found


def namespace_pids(lab: NetLab, hosts: list[str]) -> list[int]:
    pids = []
    for host in hosts:
        out = subprocess.run(["ip", "netns", "pids", host], capture_output=True, text=True).stdout
        pids += [int(p) for p in out.split() if p.isdigit()]
    return pids


class CpuWindow:
    """CPU seconds per group of processes, and of all cores, between :meth:`begin` and :meth:`end`."""

    def __init__(self, groups: dict[str, Any]) -> None:
        self.groups = groups  # name -> callable returning the group's pids now
        self.start: dict[str, dict[int, float]] = {}

    def snapshot(self) -> tuple[float, float, dict[str, dict[int, float]]]:
        return (
            time.perf_counter(),
            cpu_total_busy(),
            {name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in self.groups.items()},
        )

    def begin(self) -> None:
        self.t0, self.busy0, self.start = self.snapshot()

    def end(self) -> dict[str, float]:
        t1, busy1, stop = self.snapshot()
        wall = max(t1 - self.t0, 1e-6)
        out = {"total": (busy1 - self.busy0) / wall}
        for name, now in stop.items():
            before = self.start.get(name, {})
            out[name] = sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in now.items()) / wall
        out["other"] = max(0.0, out["total"] - sum(v for k, v in out.items() if k != "total"))
        out["window_s"] = wall
        return out


# --- throughput across hosts ------------------------------------------------------------------


def through(url: str, proxy: FaultProxy) -> str:
    return make_url(url).set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)


def stop_group(procs: list[subprocess.Popen], grace: float = 30) -> None:
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"worker host process {proc.pid} ignored SIGTERM for {grace:.0f} s; SIGKILL")
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def wait_registered(conn: redis.Redis, n: int, hosts: list[subprocess.Popen], timeout: float) -> float:
    started = time.perf_counter()
    queue = Queue(QUEUE, connection=conn)
    while Worker.count(connection=conn, queue=queue) < n:
        dead = [p for p in hosts if p.poll() is not None]
        if dead:
            raise RuntimeError(f"a worker host exited with {dead[0].returncode}")
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"only {Worker.count(connection=conn, queue=queue)} of {n} workers registered")
        time.sleep(0.1)
    return time.perf_counter() - started


def verdict(cpu: dict[str, float], nproc: int) -> str:
    found = []
    if cpu["total"] >= 0.9 * nproc:
        found.append(f"CPU ({cpu['total']:.2f} of {nproc} cores)")
    if cpu["receiver"] >= 0.9:
        found.append("receiver (its one core)")
    return " and ".join(found) if found else "neither"


def throughput_round(
    lab: NetLab,
    procs: Processes,
    tmp: Path,
    proxies: tuple[FaultProxy, FaultProxy],
    hosts: int,
    events: int,
    attempt: int,
) -> dict[str, Any]:
    redis_proxy, pg_proxy = proxies
    flush_db10()
    reset_database(PG_URL)
    name = f"network-{hosts}-{attempt}"
    record = tmp / f"{name}-arrivals.txt"
    receiver, url = start_receiver(procs, lab.service_ip, RECEIVER_DELAY, record, f"{name}-receiver")
    networks = [lab.network, "127.0.0.0/8"]
    config, _raw = our_config(
        tmp,
        name,
        url,
        through(PG_URL, pg_proxy),
        extra=raw_config(
            name,
            tmp,
            url,
            f"redis://{redis_proxy.host}:{redis_proxy.port}/{REDIS_DB}",
            through(PG_URL, pg_proxy),
            networks,
        ),
    )
    _path, direct = our_config(
        tmp, f"{name}-driver", url, PG_URL, extra=raw_config(name, tmp, url, REDIS_DIRECT, PG_URL, networks)
    )
    chosen = lab.hosts[:hosts]
    env = child_env(config)
    started = [
        lab.run(
            host,
            [sys.executable, str(CODE / "worker.py"), "--concurrency", str(CONCURRENCY), "--name", host],
            env,
            tmp / f"{name}-{host}.log",
        )
        for host in chosen
    ]
    conn = redis_db10()
    engine = db_engine(PG_URL)
    window = CpuWindow(
        {
            "workers": lambda: namespace_pids(lab, chosen),
            "receiver": lambda: [receiver.pid],
            "bench": lambda: [os.getpid()],
            "redis": lambda: pids_named("redis-server", ":6379"),
            "postgresql": lambda: pids_named("postgres"),
        }
    )
    try:
        startup = wait_registered(conn, hosts * CONCURRENCY, started, timeout=90)
        data = get_event(EVENT).example()
        with driver_runtime(direct):
            queued_at = time.perf_counter()
            for start in range(0, events, 500):
                dispatch_many(EVENT, [data] * min(500, events - start))
            queue_s = time.perf_counter() - queued_at
        deadline = time.monotonic() + 60 + events / 5
        begun = False
        while True:
            if not begun and record.stat().st_size > 0:
                window.begin()
                begun = True
            if begun and len(arrivals(record)) >= events:
                cpu = window.end()
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{events - len(arrivals(record))} of {events} deliveries never arrived")
            time.sleep(0.02)
        seen = arrivals(record)
        deadline = time.monotonic() + 30
        while delivery_counts(engine).get("delivered", 0) < events and time.monotonic() < deadline:
            time.sleep(0.2)
        delivered = delivery_counts(engine)
    finally:
        stop_group(started)
        procs.stop([receiver])
        engine.dispose()
        conn.close()
    first, last = min(seen.values()), max(seen.values())
    span = last - first
    nproc = os.cpu_count() or 1
    return {
        "hosts": hosts,
        "worker_processes": hosts * CONCURRENCY,
        "events": events,
        "delivered": len(seen),
        "db_delivered": delivered.get("delivered", 0),
        "db_statuses": delivered,
        "startup_s": startup,
        "queue_s": queue_s,
        "span_s": span,
        "rate": (len(seen) - 1) / span if span > 0 else 0.0,
        "ideal": hosts * CONCURRENCY * THREADS_PER_PROCESS / RECEIVER_DELAY,
        "cpu": cpu,
        "saturated": verdict(cpu, nproc),
    }


def throughput(procs: Processes, tmp: Path, events: int, repeats: int) -> dict[str, Any]:
    """Each host count ``repeats`` times, interleaved; the best run of each is kept (its CPU too)."""
    reason = unavailable()
    if reason:
        return {"skipped": reason}
    out: dict[str, Any] = {
        "events": events,
        "concurrency": CONCURRENCY,
        "threads": THREADS_PER_PROCESS,
        "receiver_delay_ms": RECEIVER_DELAY * 1000,
        "proxy_delay_ms": PROXY_DELAY * 1000,
        "redis_db": REDIS_DB,
        "nproc": os.cpu_count(),
        "receiver": "bench/receiver.py's asyncio protocol, one process",
        "repeats": repeats,
        "rounds": [],
    }
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: [], 3: []}
    with NetLab(3, tmp / "netlab") as lab:
        redis_proxy = FaultProxy(lab.service_ip, ("127.0.0.1", 6379), delay=PROXY_DELAY)
        pg_proxy = FaultProxy(lab.service_ip, ("127.0.0.1", make_url(PG_URL).port or 5432), delay=PROXY_DELAY)
        try:
            for attempt, hosts in [(a, h) for a in range(1, repeats + 1) for h in runs]:
                r = throughput_round(lab, procs, tmp, (redis_proxy, pg_proxy), hosts, events, attempt)
                runs[hosts].append(r)
                c = r["cpu"]
                say(
                    f"   {hosts} host(s): {r['rate']:.0f} deliveries/s ({r['delivered']} in {r['span_s']:.2f} s); "
                    f"CPU {c['total']:.2f} cores: workers {c['workers']:.2f}, receiver {c['receiver']:.2f}, "
                    f"bench/proxies {c['bench']:.2f}, redis {c['redis']:.2f}, postgres {c['postgresql']:.2f}; "
                    f"saturated: {r['saturated']}"
                )
        finally:
            redis_proxy.close()
            pg_proxy.close()
            flush_db10()
    for done in runs.values():
        best = max(done, key=lambda r: r["rate"])
        out["rounds"].append({**best, "all_rates": [r["rate"] for r in done]})
    return out


# --- the Sentinel failover gap ----------------------------------------------------------------


def stuck_deliveries(
    sentinels: SentinelSet,
    engine: Any,
    dispatched: list[tuple[float, str]],
    seen: dict[str, float],
    killed_at: float,
) -> list[dict[str, Any]]:
    """What the database and the new primary hold for each event never delivered."""
    missing = [(at, rid) for at, rid in dispatched if rid not in seen]
    if not missing:
        return []
    out = []
    with redis.Redis(port=sentinels.primary_port, db=REDIS_DB, decode_responses=True) as primary:
        queued = set(primary.lrange(f"rq:queue:{QUEUE}", 0, -1))
        for at, rid in missing:
            with engine.connect() as conn:
                row = conn.execute(
                    sa.select(store.DELIVERIES.c.status, store.DELIVERIES.c.attempts).where(
                        store.DELIVERIES.c.request_id == rid
                    )
                ).first()
            job = primary.hgetall(f"rq:job:{rid}")
            out.append(
                {
                    "request_id": rid,
                    "dispatched_s": at - killed_at,
                    "db_status": None if row is None else row[0],
                    "db_attempts": None if row is None else row[1],
                    "job_status": job.get("status") if job else None,
                    "job_worker": job.get("worker_name") if job else None,
                    "in_queue": rid in queued,
                    "registries": [
                        key
                        for key in primary.keys(f"rq:*:{QUEUE}")
                        if primary.type(key) == "zset" and primary.zscore(key, rid) is not None
                    ],
                }
            )
    return out


def failover_run(procs: Processes, tmp: Path, n: int) -> dict[str, Any]:
    reset_database(PG_URL)
    record = tmp / f"failover-arrivals-{n}.txt"
    with SentinelSet(tmp / f"sentinel-{n}", db=REDIS_DB) as sentinels:
        receiver, url = start_receiver(procs, "127.0.0.1", 0.0, record, f"failover-receiver-{n}")
        name = f"failover-{n}"
        config, raw = our_config(
            tmp, name, url, PG_URL, extra=raw_config(name, tmp, url, sentinels.url, PG_URL, ["127.0.0.0/8"])
        )
        workers = [our_worker(procs, config, f"{name}-worker-{i}", burst=False) for i in (1, 2)]
        dispatched: list[tuple[float, str]] = []
        refused: list[str] = []
        took: list[float] = []
        stop = threading.Event()
        data = get_event(EVENT).example()

        def load() -> None:
            """``dispatch()`` every 1/rate s; a call blocked by the failover is not caught up on."""
            next_at = time.perf_counter()
            while not stop.is_set():
                at, began = time.time(), time.perf_counter()
                try:
                    dispatched.extend((at, rid) for rid in dispatch(EVENT, data))
                except DispatcherError as exc:
                    refused.append(type(exc).__name__)
                took.append(time.perf_counter() - began)
                next_at = max(next_at + 1 / FAILOVER_RATE, time.perf_counter())
                stop.wait(next_at - time.perf_counter())

        engine = db_engine(PG_URL)
        try:
            with driver_runtime(raw):
                loader = threading.Thread(target=load, daemon=True)
                loader.start()
                try:
                    deadline = time.monotonic() + 60
                    while not arrivals(record):
                        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                            raise RuntimeError("nothing delivered before the kill:\n" + tail(workers[0]))
                        time.sleep(0.1)
                    time.sleep(3)  # steady load through the primary
                    killed_at = time.time()
                    sentinels.kill_primary()
                    sentinels.wait_failover(timeout=60)
                    named_at = time.time()
                    deadline = time.monotonic() + 90
                    first_after = None
                    while first_after is None:
                        after = {rid for at, rid in list(dispatched) if at >= killed_at}
                        seen = [t for rid, t in arrivals(record).items() if rid in after]
                        if seen:
                            first_after = min(seen)
                        elif time.monotonic() > deadline:
                            raise RuntimeError("no event dispatched after the kill was delivered within 90 s")
                        else:
                            time.sleep(0.02)
                    time.sleep(2)  # the load goes on through the new primary
                finally:
                    stop.set()
                    loader.join(timeout=60)
                ids = {rid for _, rid in dispatched}
                deadline = time.monotonic() + FINAL_WAIT
                while time.monotonic() < deadline:
                    counts = delivery_counts(engine)
                    if counts.get("delivered", 0) >= len(ids):
                        break
                    time.sleep(0.25)
                alive = sum(w.poll() is None for w in workers)
                seen = arrivals(record)
                stuck = stuck_deliveries(sentinels, engine, dispatched, seen, killed_at)
        finally:
            procs.stop(workers)
            procs.stop([receiver])
            engine.dispose()
    return {
        "named_s": named_at - killed_at,
        "first_delivery_s": first_after - killed_at,
        "dispatched": len(ids),
        "refused": len(refused),
        "refused_kinds": sorted(set(refused)),
        "longest_dispatch_s": max(took),
        "delivered": counts.get("delivered", 0),
        "statuses": counts,
        "workers_alive_at_end": alive,
        "stuck": stuck,
        "all_delivered_s": max(seen[rid] for rid in ids) - killed_at if ids <= seen.keys() else None,
        "late": [
            {"dispatched_s": at - killed_at, "delivered_s": seen[rid] - killed_at if rid in seen else None}
            for at, rid in sorted(dispatched)
            if rid not in seen or seen[rid] - at > LATE
        ],
    }


def failover(procs: Processes, tmp: Path) -> dict[str, Any]:
    if sentinel_binary() is None:
        return {"skipped": "redis-sentinel is not installed (apt-get install redis-sentinel)"}
    runs = []
    for n in range(1, FAILOVER_RUNS + 1):
        r = failover_run(procs, tmp, n)
        runs.append(r)
        say(
            f"   failover {n}: new primary named {r['named_s']:.2f} s after the kill, first delivery of a "
            f"later event {r['first_delivery_s']:.2f} s; {r['delivered']}/{r['dispatched']} delivered, "
            f"{r['refused']} refused; {len(r['late'])} delivered > {LATE:g} s after dispatch() or never; "
            f"stuck: {r['stuck']}"
        )
    return {
        "rate": FAILOVER_RATE,
        "workers": 2,
        "down_after_ms": DOWN_AFTER_MS,
        "final_wait_s": FINAL_WAIT,
        "runs": runs,
        "median_named_s": statistics.median(r["named_s"] for r in runs),
        "median_first_delivery_s": statistics.median(r["first_delivery_s"] for r in runs),
    }


def run(procs: Processes, tmp: Path, url: str | None, sizes: Sizes) -> dict[str, Any]:
    events = 1500 if sizes.drain >= 20_000 else 300
    say(
        f"9. network: {events} deliveries over 1, 2, 3 worker hosts; the Sentinel failover gap ×{FAILOVER_RUNS}"
    )
    out = {"throughput": throughput(procs, tmp, events, sizes.repeats), "failover": failover(procs, tmp)}
    reasons = [out[k]["skipped"] for k in ("throughput", "failover") if out[k].get("skipped")]
    if len(reasons) == 2:
        out["skipped"] = "; ".join(reasons)
    for reason in reasons:
        say(f"   skipped: {reason}")
    return out
