"""The benchmark suite: ``.venv/bin/python bench/run.py [--quick] [--only NAME] [--profile]``.

Starts its own receivers on 127.0.0.1 (nginx ``return 200`` when nginx is installed, else a raw
asyncio server; the asyncio server always for the 100 ms receiver), runs our worker processes
(``python worker.py``) and the RQ / HTTP baselines against the same Redis (DB 4) and the same
PostgreSQL database (``bench``), and prints one table. Every ratio compares figures of the same
run. Results go to ``bench/results/latest.{md,json}`` (and ``quick.*`` or ``full.*``), the
slow-receiver chart to ``bench/results/slow_receivers.png``; a full run also refreshes the
table in ``bench/README.md``.

Scenarios (``--only`` takes one of these names):

* ``worker``   per worker process, instant receiver: ours vs RQ's no-op floor, the naive forking
  worker with ``requests.post``, and a bare ``requests.Session`` loop.
* ``slow``     receiver answering after 100 ms: 1, 4, 16, 32 deliveries in flight at once, as
  ceil(N / 16) worker processes with N threads between them (``worker.threads``).
* ``dispatch`` ``dispatch()`` latency and ``dispatch_many`` throughput, SQLite and PostgreSQL.
* ``drain``    a backlog of 20,000 deliveries (2,000 with ``--quick``) drained by 4 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CODE = Path(os.environ.get("BENCH_CODE") or ROOT).resolve()
"""The checkout under test (its ``dispatcher/`` and ``worker.py``): this one, or ``BENCH_CODE``."""
for _path in (ROOT, CODE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import redis  # noqa: E402
import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import yaml  # noqa: E402
from rq import Queue, Worker  # noqa: E402

from dispatcher import dispatch, dispatch_many, store  # noqa: E402
from dispatcher.config import parse_settings  # noqa: E402
from dispatcher.dispatch import prepare  # noqa: E402
from dispatcher.events import get_event  # noqa: E402
from dispatcher.runtime import Runtime, set_runtime  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/4"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
QUEUE_NAME = "bench-webhooks"
RQ_QUEUE_NAME = "bench-rq"
EVENT = "order_changed"
KEY = "bench-key-0123456789"
SLOW_DELAY = 0.1
BATCH = 500
RESULTS = ROOT / "bench" / "results"
README = ROOT / "bench" / "README.md"
SCENARIOS = ("worker", "slow", "dispatch", "drain")
DRAIN_WORKERS = 4


@dataclass(frozen=True)
class Sizes:
    repeats: int
    ours: int
    floor: int
    naive: int
    ceiling: int
    slow_workers: tuple[int, ...]
    slow_processes_only: tuple[int, ...]
    slow_settle: float
    slow_window: float
    dispatch_calls: int
    dispatch_batches: int
    drain: int


QUICK = Sizes(
    repeats=1,
    ours=300,
    floor=600,
    naive=100,
    ceiling=1000,
    slow_workers=(1, 4, 16, 32),
    slow_processes_only=(16, 32),
    slow_settle=1,
    slow_window=3,
    dispatch_calls=300,
    dispatch_batches=4,
    drain=2000,
)
FULL = Sizes(
    repeats=2,
    ours=1000,
    floor=2000,
    naive=300,
    ceiling=2500,
    slow_workers=(1, 4, 16, 32),
    slow_processes_only=(16, 32),
    slow_settle=3,
    slow_window=10,
    dispatch_calls=2000,
    dispatch_batches=20,
    drain=20000,
)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- processes -------------------------------------------------------------------------------


class Processes:
    """Every process the benchmark starts, each in its own process group, stopped in ``close``."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[subprocess.Popen] = []
        self.count = 0

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        self.count += 1
        log = open(self.logdir / f"{self.count:03d}-{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen(
            cmd,
            cwd=CODE,
            env=env or child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log = log  # type: ignore[attr-defined]
        proc.log_path = log.name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def stop(self, procs: list[subprocess.Popen], sig: int = signal.SIGTERM, grace: float = 20) -> None:
        """SIGTERM each process's group (the process and what it forked), then SIGKILL after ``grace``."""
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"process {proc.pid} ignored SIGTERM for {grace:.0f} s; SIGKILL")
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
            # what the process forked (RQ's scheduler) may outlive it in the group
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.log.close()  # type: ignore[attr-defined]
            if proc in self.procs:
                self.procs.remove(proc)

    def close(self) -> None:
        self.stop(list(self.procs), grace=10)


def child_env(config: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(CODE), str(ROOT)]))
    env["PYTHONUNBUFFERED"] = "1"
    if config is not None:
        env["DISPATCHER_CONFIG"] = str(config)
    return env


def tail(proc: subprocess.Popen, lines: int = 15) -> str:
    try:
        text = Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited with {proc.returncode}:\n{tail(proc)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"receiver on port {port} did not start:\n{tail(proc)}")


def check_receiver(url: str) -> None:
    with requests.Session() as session:
        response = session.post(url, data=b'{"ping":1}', timeout=5)
        if response.status_code != 200:
            raise RuntimeError(f"receiver {url} answered {response.status_code}")


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_buffer_size 1m;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def start_instant_receiver(procs: Processes, tmp: Path) -> tuple[str, str]:
    """nginx ``return 200`` when nginx is installed, else the asyncio receiver. Returns (url, kind)."""
    port = free_port()
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx:
        ndir = tmp / "nginx"
        ndir.mkdir()
        conf = ndir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=ndir, port=port))
        proc = procs.start("nginx", [nginx, "-p", str(ndir), "-c", str(conf)])
        try:
            wait_for_port(port, proc)
            url = f"http://127.0.0.1:{port}/hook"
            check_receiver(url)
            version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
            return url, version.replace("nginx version: ", "") + " (return 200)"
        except RuntimeError as exc:
            say(f"nginx did not start ({exc}); using the asyncio receiver")
            procs.stop([proc])
            port = free_port()
    proc = procs.start("receiver", [sys.executable, "-m", "bench.receiver", str(port)])
    wait_for_port(port, proc)
    url = f"http://127.0.0.1:{port}/hook"
    check_receiver(url)
    return url, "asyncio raw-protocol receiver (bench/receiver.py)"


def start_slow_receiver(procs: Processes) -> str:
    port = free_port()
    proc = procs.start("slow-receiver", [sys.executable, "-m", "bench.receiver", str(port), str(SLOW_DELAY)])
    wait_for_port(port, proc)
    url = f"http://127.0.0.1:{port}/hook"
    check_receiver(url)
    return url


# --- /proc -------------------------------------------------------------------------------------


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid: int) -> int:
    """Proportional set size: the process's private pages plus its share of shared ones."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int, reaped_children: bool = False) -> float:
    """CPU time of a live process; with ``reaped_children`` also that of the children it has
    waited for (the forking worker's work horses)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / CLOCK_TICKS


def load_average() -> float:
    return os.getloadavg()[0]


def children_of(pids: set[int]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid in pids:
            found.append(int(entry.name))
    return found


# --- services ------------------------------------------------------------------------------


def redis_client() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    if client.connection_pool.connection_kwargs.get("db") != 4:
        raise SystemExit("refusing to use a Redis DB other than 4")
    return client


def flush_redis() -> None:
    client = redis_client()
    client.flushdb()
    client.close()


def reset_database(url: str) -> None:
    """An empty transaction log: a fresh SQLite file, or the PostgreSQL tables truncated."""
    if url.startswith("sqlite"):
        path = Path(sa.engine.make_url(url).database)
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    engine = store.create_store_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "TRUNCATE webhook_deliveries, webhook_event_transaction_log, webhook_endpoint_state RESTART IDENTITY"
        )
    engine.dispose()


def db_engine(url: str) -> sa.Engine:
    return store.create_store_engine(url)


def delivery_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(store.DELIVERIES.c.status, sa.func.count()).group_by(store.DELIVERIES.c.status)
        ).all()
    return {status: count for status, count in rows}


def delivered_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(store.DELIVERIES.c.status == store.DELIVERED)
        ).scalar_one()


def attempt_summary(engine: sa.Engine) -> dict[str, Any]:
    """Rows, distinct deliveries and the first-claim-to-last-record span, from the database."""
    d, a = store.DELIVERIES.c, store.ATTEMPTS.c
    with engine.connect() as conn:
        rows, distinct = conn.execute(
            sa.select(sa.func.count(), sa.func.count(a.request_id.distinct()))
        ).one()
        first, last = conn.execute(
            sa.select(sa.func.min(d.attempt_started_at), sa.func.max(d.updated_at))
        ).one()
    span = (last - first).total_seconds() if first is not None and last is not None else None
    return {"attempt_rows": rows, "distinct_deliveries": distinct, "db_span_s": span}


# --- our configuration ----------------------------------------------------------------------


def our_config(
    tmp: Path, name: str, url: str, database_url: str, threads: int | None = None
) -> tuple[Path, dict[str, Any]]:
    """A worker configuration; ``threads`` is ``worker.threads`` (the default when None)."""
    raw: dict[str, Any] = {
        "source": "Baremeds",
        "environment": "bench",
        "redis_url": REDIS_URL,
        "database_url": database_url,
        "queue_name": QUEUE_NAME,
        "process_log": str(tmp / f"logs-{name}" / "send-webhook-request-process.log"),
        "delivery": {"timeout": 5, "max_attempts": 3, "backoff": [1]},
        "endpoints": [{"name": "bench", "url": url, "key": KEY}],
        "allow_networks": ["127.0.0.0/8"],
    }
    if threads is not None:
        raw["worker"] = {"threads": threads}
    path = tmp / f"config-{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    parse_settings(raw, env={})  # fail here, not in a worker, on a bad config
    return path, raw


@contextmanager
def driver_runtime(raw: dict[str, Any]) -> Iterator[Runtime]:
    """This process's runtime for ``dispatch()``, built from the same configuration as the workers."""
    runtime = Runtime(parse_settings(raw, env={}), worker_name="bench-driver")
    previous = set_runtime(runtime)
    try:
        yield runtime
    finally:
        set_runtime(previous)
        runtime.close()


def sample_data() -> dict[str, Any]:
    return get_event(EVENT).example()


def queue_backlog(count: int, batch: int = BATCH) -> float:
    """dispatch_many ``count`` events through the installed runtime; returns the seconds it took."""
    data = sample_data()
    started = time.perf_counter()
    left = count
    while left > 0:
        n = min(batch, left)
        dispatch_many(EVENT, [data] * n)
        left -= n
    return time.perf_counter() - started


def our_worker(procs: Processes, config: Path, name: str, burst: bool) -> subprocess.Popen:
    cmd = [sys.executable, "worker.py", *(["--burst"] if burst else [])]
    return procs.start(name, cmd, child_env(config))


# --- measuring a burst worker by its queue --------------------------------------------------


def watch_drain(
    conn: redis.Redis, queue_key: str, workers: list[subprocess.Popen], total: int, timeout: float
) -> dict[str, Any]:
    """Polls the queue's length every 5 ms while burst workers drain it.

    The rate is the jobs dequeued between the first poll that saw the queue shorter than
    ``total`` and the first that saw it empty, over that time: worker start-up is left out the
    same way for every worker kind. ``wall_s`` is from the workers' start to their exit.
    """
    started = time.perf_counter()
    t_first = t_empty = None
    left_first = None
    cpu_first = cpu_empty = 0.0
    deadline = started + timeout

    def cpu() -> float:
        return sum(cpu_seconds(p.pid, reaped_children=True) for p in workers)

    while True:
        now = time.perf_counter()
        left = conn.llen(queue_key)
        if t_first is None and left < total:
            t_first, left_first, cpu_first = now, left, cpu()
        if left == 0 and t_empty is None:
            t_empty, cpu_empty = now, cpu()
        if t_empty is not None and all(p.poll() is not None for p in workers):
            break
        if t_empty is None and all(p.poll() is not None for p in workers):
            raise RuntimeError(
                f"workers exited with {left} jobs left:\n" + "\n".join(tail(p) for p in workers)
            )
        if now > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s with {left} jobs left")
        time.sleep(0.005)
    wall = time.perf_counter() - started
    codes = [p.returncode for p in workers]
    if any(codes):
        raise RuntimeError(f"worker exit codes {codes}:\n" + "\n".join(tail(p) for p in workers))
    steady = (t_empty - t_first) if t_first is not None else 0.0
    rate = left_first / steady if steady > 0 and left_first else total / wall
    cpu_ms = (cpu_empty - cpu_first) * 1000 / left_first if left_first else None
    return {
        "n": total,
        "rate": rate,
        "steady_s": steady,
        "wall_s": wall,
        "cpu_ms_per_job": cpu_ms,
        "load_average_1m": load_average(),
    }


# --- 1. per worker process, instant receiver ------------------------------------------------


def bench_ours_burst(procs: Processes, tmp: Path, url: str, database_url: str, label: str, n: int) -> dict:
    flush_redis()
    reset_database(database_url)
    config, raw = our_config(tmp, label, url, database_url)
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
    if counts.get(store.DELIVERED) != n:
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


def sample_body(raw: dict[str, Any]) -> bytes:
    settings = parse_settings(raw, env={})
    (delivery,) = prepare(settings, EVENT, [sample_data()])
    return delivery.payload.encode()


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


def scenario_worker(procs: Processes, tmp: Path, url: str, sizes: Sizes) -> dict:
    """Each runner ``sizes.repeats`` times, interleaved (ours, ours SQLite, floor, naive, ceiling,
    then again), keeping each runner's best run: on a shared machine the least disturbed one."""
    say(f"1. per worker process, instant receiver (best of {sizes.repeats}, interleaved)")
    _path, raw = our_config(tmp, "body", url, PG_URL)
    body = sample_body(raw)
    runners: list[tuple[str, str, Callable[[], dict]]] = [
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
    runs: dict[str, list[dict]] = {key: [] for key, _label, _fn in runners}
    for round_ in range(sizes.repeats):
        for key, label, fn in runners:
            say(f"   [{round_ + 1}/{sizes.repeats}] {label}")
            result = fn()
            runs[key].append(result)
            say(f"   -> {result['rate']:.0f}/s, {result.get('cpu_ms_per_job') or 0:.1f} CPU ms/job")
    out: dict[str, Any] = {}
    for key, results in runs.items():
        best = dict(max(results, key=lambda r: r["rate"]))
        best["all_rates"] = [r["rate"] for r in results]
        out[key] = best
    ours = out["ours_pg"]["rate"]
    out["ratios"] = {
        "ours_over_floor": ours / out["floor"]["rate"],
        "ours_over_naive": ours / out["naive"]["rate"],
        "ours_over_ceiling": ours / out["ceiling"]["rate"],
        "sqlite_over_floor": out["ours_sqlite"]["rate"] / out["floor"]["rate"],
        "sqlite_over_naive": out["ours_sqlite"]["rate"] / out["naive"]["rate"],
        "sqlite_over_ceiling": out["ours_sqlite"]["rate"] / out["ceiling"]["rate"],
    }
    out["repeats"] = sizes.repeats
    flush_redis()
    return out


# --- 2. slow receivers ----------------------------------------------------------------------


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


THREADS_PER_PROCESS = 16
"""The slow scenario's layout: N concurrent deliveries run as ceil(N / 16) processes sharing N threads."""


def layout(concurrency: int, processes_only: bool = False) -> tuple[int, int]:
    """(processes, threads per process) for ``concurrency`` deliveries in flight at once."""
    if processes_only:
        return concurrency, 1
    processes = -(-concurrency // THREADS_PER_PROCESS)
    return processes, concurrency // processes


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
            pids = {p.pid for p in workers}
            tree = pids | set(children_of(pids))
            c0, cpu0, t0 = delivered_count(engine), sum(cpu_seconds(p) for p in tree), time.perf_counter()
            time.sleep(sizes.slow_window / 2)
            rss = [rss_kib(p.pid) for p in workers]
            pss = [pss_kib(p.pid) for p in workers]
            helpers = children_of(pids)
            helper_rss = [rss_kib(p) for p in helpers]
            time.sleep(sizes.slow_window / 2)
            tree |= set(helpers)
            c1, cpu1, t1 = delivered_count(engine), sum(cpu_seconds(p) for p in tree), time.perf_counter()
            left_end = conn.llen(queue_key)
            alive = sum(p.poll() is None for p in workers)
        finally:
            procs.stop(workers, grace=30)
    counts = delivery_counts(engine)
    engine.dispose()
    conn.close()
    delivered = c1 - c0
    rate = delivered / (t1 - t0)
    return {
        "concurrency": n * threads,
        "processes_only": processes_only,
        "workers": n,
        "threads": threads,
        "rate": rate,
        "ideal": ideal,
        "ratio": rate / ideal,
        "window_s": t1 - t0,
        "delivered_in_window": delivered,
        "startup_s": startup,
        "queue_left_at_end": left_end,
        "starved": left_end == 0,
        "alive_at_end": alive,
        "rss_mib_mean": statistics.mean(rss) / 1024,
        "rss_mib_max": max(rss) / 1024,
        "pss_mib_mean": statistics.mean(pss) / 1024,
        "total_rss_mib": (sum(rss) + sum(helper_rss)) / 1024,
        "helper_processes": len(helpers),
        "helper_rss_mib": sum(helper_rss) / 1024,
        "cpu_ms_per_delivery": (cpu1 - cpu0) * 1000 / delivered if delivered else None,
        "cpu_cores_busy": (cpu1 - cpu0) / (t1 - t0),
        "statuses_after": counts,
    }


def scenario_slow(procs: Processes, tmp: Path, sizes: Sizes) -> dict:
    say(f"2. slow receivers ({SLOW_DELAY * 1000:.0f} ms), concurrent deliveries {list(sizes.slow_workers)}")
    url = start_slow_receiver(procs)
    rounds = []
    plan = [(c, False) for c in sizes.slow_workers] + [(c, True) for c in sizes.slow_processes_only]
    for concurrency, processes_only in plan:
        n, threads = layout(concurrency, processes_only)
        say(f"   {concurrency} at once: {n} worker process(es) × {threads} thread(s)")
        r = slow_round(procs, tmp, url, concurrency, sizes, processes_only)
        say(
            f"   -> {r['rate']:.1f}/s of ideal {r['ideal']:.0f}/s ({r['ratio']:.2f}), "
            f"RSS {r['rss_mib_mean']:.0f} MiB/worker, started in {r['startup_s']:.1f} s"
        )
        rounds.append(r)
    flush_redis()
    return {"delay_ms": SLOW_DELAY * 1000, "rounds": rounds}


# --- 3. dispatch ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def dispatch_round(tmp: Path, label: str, database_url: str, url: str, sizes: Sizes) -> dict:
    flush_redis()
    reset_database(database_url)
    _config, raw = our_config(tmp, f"dispatch-{label}", url, database_url)
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


def scenario_dispatch(tmp: Path, url: str, sizes: Sizes) -> dict:
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


# --- 4. backlog drain -----------------------------------------------------------------------


def scenario_drain(procs: Processes, tmp: Path, url: str, sizes: Sizes) -> dict:
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
        counts.get(store.DELIVERED) == n
        and summary["attempt_rows"] == n
        and summary["distinct_deliveries"] == n
    )
    say(
        f"   -> drained in {result['wall_s']:.1f} s from start ({n / result['wall_s']:.0f}/s); "
        f"all delivered once: {result['all_delivered_once']}"
    )
    return result


# --- the report -----------------------------------------------------------------------------


def code_under_test() -> str:
    import dispatcher

    where = Path(dispatcher.__file__).resolve().parent.parent
    if where != CODE:
        raise SystemExit(f"dispatcher imported from {where}, not from the code under test {CODE}")
    git = ["git", "-C", str(CODE)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return str(CODE)
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--", "dispatcher", "worker.py"], capture_output=True, text=True
    ).stdout.splitlines()
    note = f" + {len(changed)} uncommitted file(s) in dispatcher/" if changed else ""
    return f"{CODE} at {head.stdout.strip()}{note}"


def machine(receiver: str | None) -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import rq

    conn = redis_client()
    server = conn.info("server")
    conn.close()
    engine = sa.create_engine(PG_URL)
    with engine.connect() as c:
        pg = c.exec_driver_sql("SHOW server_version").scalar_one()
    engine.dispose()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "rq": rq.__version__,
        "redis_server": server.get("redis_version", "?"),
        "postgresql": str(pg).split()[0],
        "kernel": platform.release(),
        "code": code_under_test(),
        "load_average_at_start": f"{load_average():.2f}",
        "receiver_instant": receiver or "-",
        "receiver_slow": f"asyncio raw-protocol receiver, {SLOW_DELAY * 1000:.0f} ms asyncio.sleep-style delay",
    }


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# Benchmark results ({results['mode']})",
        "",
        f"- command: `{results['command']}`",
        f"- date: {results['date']}, took {results['elapsed_s']:.0f} s",
        f"- code under test: {m['code']}",
        f"- machine: nproc {m['nproc']}, CPU {m['cpu']}, Linux {m['kernel']}, "
        f"load average at start {m['load_average_at_start']}",
        f"- Python {m['python']}, RQ {m['rq']}, redis-server {m['redis_server']}, PostgreSQL {m['postgresql']}",
        f"- instant receiver: {m['receiver_instant']}; slow receiver: {m['receiver_slow']}",
        "- worker scenarios use PostgreSQL (database `bench`) unless marked SQLite; Redis DB 4",
        "",
    ]
    w = results.get("worker")
    if w:
        ours = w["ours_pg"]["rate"]
        lines += [
            "## 1. Per worker process, instant receiver",
            "",
            f"Each runner {w['repeats']}×, interleaved; the best run is shown and used in the ratios. "
            "CPU ms/job, steady, wall and load average are those of the best run.",
            "",
            "| runner | jobs | per second (best) | all runs /s | CPU ms/job | steady (s) "
            "| wall incl. start-up (s) | load avg | ours (PG) ÷ this |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        rows = [
            ("ours: `python worker.py --burst`, PostgreSQL", "ours_pg"),
            ("ours: `python worker.py --burst`, SQLite", "ours_sqlite"),
            ("(a) RQ floor: `SimpleWorker`, no-op job", "floor"),
            ("(b) naive: forking `rq.Worker`, `requests.post`", "naive"),
            ("(c) HTTP ceiling: bare `requests.Session` loop", "ceiling"),
        ]
        for label, key in rows:
            r = w[key]
            cpu = f"{r['cpu_ms_per_job']:.1f}" if r.get("cpu_ms_per_job") is not None else "-"
            lines.append(
                f"| {label} | {r['n']} | {r['rate']:.0f} | {', '.join(f'{x:.0f}' for x in r['all_rates'])} "
                f"| {cpu} | {r['steady_s']:.2f} | {r['wall_s']:.2f} "
                f"| {r['load_average_1m']:.1f} | {ours / r['rate']:.2f} |"
            )
        ra = w["ratios"]
        lines += [
            "",
            f"Ratios (PostgreSQL): ours/floor **{ra['ours_over_floor']:.2f}**, ours/naive "
            f"**{ra['ours_over_naive']:.2f}**, ours/ceiling **{ra['ours_over_ceiling']:.2f}**. "
            f"SQLite: {ra['sqlite_over_floor']:.2f}, {ra['sqlite_over_naive']:.2f}, "
            f"{ra['sqlite_over_ceiling']:.2f}.",
            "",
        ]
        db_rates = [w[k].get("db_rate") for k in ("ours_pg", "ours_sqlite")]
        if all(db_rates):
            lines += [
                "A batch takes jobs off the queue before it sends them, so ours is also measured by "
                "its attempt rows (first → last `created_at`, same best run): PostgreSQL "
                f"{db_rates[0]:.0f}/s, SQLite {db_rates[1]:.0f}/s.",
                "",
            ]
    s = results.get("slow")
    if s:
        lines += [
            f"## 2. Slow receivers ({s['delay_ms']:.0f} ms per answer), PostgreSQL",
            "",
            "| concurrent deliveries N | processes × threads | deliveries/s | ideal N×10/s | ÷ ideal "
            "| RSS/worker process MiB (mean / max) | PSS/worker MiB | CPU ms/delivery | CPU cores busy "
            "| start-up (s) | note |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in s["rounds"]:
            note = []
            if r["starved"]:
                note.append("queue ran dry")
            if r["alive_at_end"] != r["workers"]:
                note.append(f"{r['workers'] - r['alive_at_end']} died")
            if r.get("processes_only"):
                note.append("comparison: one thread per process (not a target row)")
            if r["helper_processes"]:
                note.append(f"+{r['helper_processes']} scheduler proc {r['helper_rss_mib']:.0f} MiB")
            cpu = r["cpu_ms_per_delivery"]
            lines.append(
                f"| {r.get('concurrency', r['workers'])} | {r['workers']} × {r.get('threads', 1)} "
                f"| {r['rate']:.1f} | {r['ideal']:.0f} | {r['ratio']:.2f} "
                f"| {r['rss_mib_mean']:.1f} / {r['rss_mib_max']:.1f} | {r['pss_mib_mean']:.1f} "
                f"| {'-' if cpu is None else f'{cpu:.1f}'} | {r['cpu_cores_busy']:.2f} "
                f"| {r['startup_s']:.1f} | {'; '.join(note)} |"
            )
        lines += ["", "Chart: `bench/results/slow_receivers.png`.", ""]
    d = results.get("dispatch")
    if d:
        lines += [
            "## 3. Dispatch (one endpoint, so one delivery per event)",
            "",
            "| database | `dispatch()` p50 ms | p99 ms | `dispatch()` events/s | `dispatch_many` (500/batch) events/s |",
            "|---|---:|---:|---:|---:|",
        ]
        for label in ("sqlite", "postgresql"):
            r = d[label]
            lines.append(
                f"| {'SQLite' if label == 'sqlite' else 'PostgreSQL'} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
                f"| {r['events_per_s']:.0f} | {r['bulk_events_per_s']:.0f} |"
            )
        lines.append("")
    b = results.get("drain")
    if b:
        lines += [
            "## 4. Backlog drain, PostgreSQL, instant receiver",
            "",
            "| deliveries | worker processes | drain from start (s) | deliveries/s | steady deliveries/s "
            "| first claim → last record (s) | all delivered exactly once |",
            "|---:|---:|---:|---:|---:|---:|---|",
            f"| {b['n']} | {b['workers']} | {b['wall_s']:.1f} | {b['n'] / b['wall_s']:.0f} | {b['rate']:.0f} "
            f"| {b['db_span_s']:.1f} | {'yes' if b['all_delivered_once'] else '**no**'} |",
            "",
            f"Queuing the backlog with `dispatch_many` took {b['dispatch_many_s']:.1f} s "
            f"({b['n'] / b['dispatch_many_s']:.0f} events/s).",
            "",
        ]
    p = results.get("profile")
    if p:
        lines += [
            "## Profile: one burst worker under py-spy (PostgreSQL, instant receiver)",
            "",
            f"GIL-holding samples (Python CPU on every thread, waiting excluded), {p['rate_hz']} Hz; "
            f"{p['deliveries']} deliveries, {p['ms_per_delivery']:.2f} ms per delivery. Details: "
            "`bench/results/profile.md`, stacks: `bench/results/profile-folded.txt`.",
            "",
            "| share | ms/delivery | where |",
            "|---:|---:|---|",
        ]
        for g in sorted(p["groups"], key=lambda g: -g["share"]):
            lines.append(f"| {g['share'] * 100:.1f}% | {g['ms_per_delivery']:.2f} | {g['name']} |")
        lines.append("")
    lines += ["## Targets (issue 5)", "", "| target | measured | met |", "|---|---|---|"]
    for target, measured, ok in targets(results):
        lines.append(f"| {target} | {measured} | {verdict(ok)} |")
    lines.append("")
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    rows: list[tuple[str, str, bool | None]] = []
    w = results.get("worker")
    if w:
        ra = w["ratios"]
        rows += [
            (
                "our worker ≥ 0.9× RQ's no-op floor",
                f"{ra['ours_over_floor']:.2f}×",
                ra["ours_over_floor"] >= 0.9,
            ),
            (
                "our worker ≥ 8× the naive forking worker",
                f"{ra['ours_over_naive']:.2f}×",
                ra["ours_over_naive"] >= 8,
            ),
            (
                "per process ≥ 0.5× the bare HTTP loop (batching)",
                f"{ra['ours_over_ceiling']:.2f}×",
                ra["ours_over_ceiling"] >= 0.5,
            ),
        ]
    s = results.get("slow")
    if s:
        threaded = [r for r in s["rounds"] if not r.get("processes_only")]
        worst = min(threaded, key=lambda r: r["ratio"])
        rows.append(
            (
                "slow receivers ≥ 0.85× ideal up to 32 concurrent",
                ", ".join(f"{r.get('concurrency', r['workers'])}: {r['ratio']:.2f}" for r in threaded),
                worst["ratio"] >= 0.85,
            )
        )
    d = results.get("dispatch")
    if d:
        for label, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
            rows.append(
                (f"`dispatch()` p50 ≤ 2 ms, {name}", f"{d[label]['p50_ms']:.2f} ms", d[label]["p50_ms"] <= 2)
            )
        for label, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
            rate = d[label]["bulk_events_per_s"]
            rows.append((f"`dispatch_many` ≥ 3,000 events/s, {name}", f"{rate:.0f}/s", rate >= 3000))
    b = results.get("drain")
    if b:
        rows.append(
            (
                f"backlog of {b['n']} drained by {b['workers']} workers (no target; time)",
                f"{b['wall_s']:.1f} s",
                b["all_delivered_once"],
            )
        )
    return rows


def chart(slow: dict[str, Any], path: Path, nproc: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("matplotlib is not installed: no chart (.venv/bin/pip install matplotlib)")
        return False
    threaded = [r for r in slow["rounds"] if not r.get("processes_only")]
    alone = [r for r in slow["rounds"] if r.get("processes_only")]
    xs = [r.get("concurrency", r["workers"]) for r in threaded]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.plot(xs, [r["ideal"] for r in threaded], "--", color="grey", marker="o", label="ideal N × 10/s")
    ax.plot(xs, [r["ideal"] * 0.85 for r in threaded], ":", color="orange", label="target 0.85 × ideal")
    ax.plot(
        xs,
        [r["rate"] for r in threaded],
        "-",
        color="tab:blue",
        marker="s",
        label=f"ours: ceil(N/{THREADS_PER_PROCESS}) processes, N threads",
    )
    if alone:
        ax.plot(
            [r["concurrency"] for r in alone],
            [r["rate"] for r in alone],
            "",
            linestyle="none",
            color="tab:red",
            marker="x",
            label="for comparison: N processes × 1 thread",
        )
    for r in slow["rounds"]:
        ax.annotate(
            f"{r['ratio']:.2f}",
            (r.get("concurrency", r["workers"]), r["rate"]),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize=8,
        )
    ax.set_xlabel("concurrent deliveries (worker processes × worker.threads)")
    ax.set_ylabel("deliveries per second")
    ax.set_title(f"Receiver answering after {slow['delay_ms']:.0f} ms ({nproc} cores, PostgreSQL)")
    ax.set_xticks(xs)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def update_readme(markdown: str) -> None:
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if not README.exists():
        return
    text = README.read_text()
    if start not in text or end not in text:
        return
    body = markdown.split("\n", 1)[1].lstrip("\n")  # drop the H1
    body = re.sub(r"^## ", "### ", body, flags=re.M)
    before, rest = text.split(start, 1)
    _old, after = rest.split(end, 1)
    README.write_text(f"{before}{start}\n{body}\n{end}{after}")


# --- profile --------------------------------------------------------------------------------


PROFILE_HZ = 250
PROFILE_GROUPS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    # (name, a frame starting with any of these is in the group, ... unless one of these is too)
    (
        "RQ: dequeue the next job (BLPOP/LMOVE + fetch the job hash)",
        ("BaseWorker.dequeue_job_and_maintain_ttl (",),
        (),
    ),
    (
        "RQ: per-job bookkeeping around our function (registries, status, heartbeat, result)",
        ("BaseWorker.execute_job (", "SimpleWorker.execute_job (", "BaseWorker.perform_job ("),
        ("deliver (dispatcher/jobs.py",),
    ),
    ("ours: take queued jobs into the batch (queue.take, one Lua call)", ("take (dispatcher/queue.py",), ()),
    (
        "ours: claim a group (store.claim_many, one UPDATE … RETURNING)",
        ("claim_many (dispatcher/store.py",),
        (),
    ),
    ("ours: HTTP POST, sender threads (delivery.post)", ("post (dispatcher/delivery.py",), ()),
    (
        "ours: record a group of attempts (store.record_attempts, one transaction)",
        ("record_attempts (dispatcher/store.py",),
        (),
    ),
    ("ours: process log line (logs.log_line)", ("log_line (dispatcher/logs.py",), ()),
    ("ours: disabled-endpoint check (health)", ("get (dispatcher/health.py", "DisabledCache.get ("), ()),
    ("ours: payload render + headers", ("render (dispatcher/payload.py", "build_headers ("), ()),
]


def write_folded(stacks: list[tuple[list[str], int]], path: Path, keep: int = 150) -> None:
    """The job loop's stacks in folded form (flamegraph.pl / speedscope), line numbers dropped,
    identical stacks merged, the ``keep`` heaviest kept."""
    merged: dict[str, int] = {}
    for frames, count in stacks:
        key = ";".join(re.sub(r":\d+\)$", ")", f) for f in frames)
        merged[key] = merged.get(key, 0) + count
    heaviest = sorted(merged.items(), key=lambda kv: -kv[1])[:keep]
    path.write_text("".join(f"{k} {v}\n" for k, v in heaviest))


def profile_worker(procs: Processes, tmp: Path, url: str, n: int) -> dict[str, Any] | None:
    """py-spy (wall clock, idle included) on one burst worker draining ``n`` deliveries
    (PostgreSQL, instant receiver): where the job loop's time goes, per delivery."""
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists():
        say("py-spy is not installed: no profile (.venv/bin/pip install py-spy)")
        return None
    say(f"profile: py-spy on one burst worker, {n} deliveries")
    flush_redis()
    reset_database(PG_URL)
    config, raw = our_config(tmp, "profile", url, PG_URL)
    with driver_runtime(raw):
        queue_backlog(n)
    raw_out = tmp / "profile.txt"
    # --gil: only the thread holding the GIL is sampled, so a sample is Python CPU time on any
    # thread (the job's and the sender threads), and waiting on the network is not counted.
    cmd = [pyspy, "record", "--gil", "--rate", str(PROFILE_HZ), "--format", "raw", "-o", str(raw_out), "--"]
    cmd += [sys.executable, "worker.py", "--burst"]
    proc = procs.start("py-spy", cmd, child_env(config))
    try:
        proc.wait(timeout=max(120, n / 5))
    finally:
        procs.stop([proc])
    if not raw_out.exists():
        say(f"py-spy wrote nothing:\n{tail(proc)}")
        return None
    stacks = []
    for line in raw_out.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    # the job loop and the sender threads (not start-up, not the housekeeping thread)
    loop = [
        (f, c)
        for f, c in stacks
        if any(x.startswith(("BaseWorker.work (", "_send (dispatcher/jobs.py")) for x in f)
    ]
    total = sum(c for _f, c in loop) or 1

    def has(frames: list[str], needles: tuple[str, ...]) -> bool:
        return any(x.startswith(needles) for x in frames)

    groups = []
    for name, needles, unless in PROFILE_GROUPS:
        hits = sum(c for f, c in loop if has(f, needles) and not (unless and has(f, unless)))
        groups.append({"name": name, "share": hits / total, "ms_per_delivery": hits / PROFILE_HZ * 1000 / n})
    grouped = sum(g["share"] for g in groups)
    groups.append(
        {
            "name": "other (RQ loop, maintenance, scheduler checks)",
            "share": max(0.0, 1 - grouped),
            "ms_per_delivery": max(0.0, 1 - grouped) * total / PROFILE_HZ * 1000 / n,
        }
    )
    selfs: dict[str, int] = {}
    for f, c in loop:
        leaf = re.sub(r":\d+\)$", ")", f[-1])
        selfs[leaf] = selfs.get(leaf, 0) + c
    top = sorted(selfs.items(), key=lambda kv: -kv[1])[:15]
    out = {
        "deliveries": n,
        "rate_hz": PROFILE_HZ,
        "loop_seconds": total / PROFILE_HZ,
        "ms_per_delivery": total / PROFILE_HZ * 1000 / n,
        "groups": groups,
        "top_self": [{"frame": name, "share": c / total} for name, c in top],
    }
    text = [
        "# py-spy profile of one burst worker (PostgreSQL, instant receiver, GIL-holding samples)",
        "",
        "Samples are taken only from the thread holding the GIL (`py-spy --gil`): Python CPU time on",
        "the job's thread and the sender threads; time spent waiting on the network is not in it.",
        "",
        f"{n} deliveries, {out['loop_seconds']:.1f} s of GIL time = {out['ms_per_delivery']:.2f} ms per delivery",
        "",
        "| share | ms/delivery | where |",
        "|---:|---:|---|",
    ]
    text += [
        f"| {g['share'] * 100:.1f}% | {g['ms_per_delivery']:.2f} | {g['name']} |"
        for g in sorted(groups, key=lambda g: -g["share"])
    ]
    text += ["", "Top leaf frames (self time):", "", "| share | frame |", "|---:|---|"]
    text += [f"| {t['share'] * 100:.1f}% | `{t['frame']}` |" for t in out["top_self"]]
    (RESULTS / "profile.md").write_text("\n".join(text) + "\n")
    write_folded(loop, RESULTS / "profile-folded.txt")
    say("   " + "\n   ".join(text[2:]))
    return out


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: under 3 minutes")
    parser.add_argument("--only", choices=SCENARIOS, help="run one scenario")
    parser.add_argument("--profile", action="store_true", help="also profile one worker with py-spy")
    args = parser.parse_args(argv)
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
    subprocess.run(
        ["createdb", "-h", "127.0.0.1", "-U", "postgres", "bench"], capture_output=True, check=False
    )  # exists already after the first run
    tmp = Path(tempfile.mkdtemp(prefix="dispatcher-bench-"))
    procs = Processes(tmp)
    say(f"working directory (process logs): {tmp}")
    receiver_kind = None
    try:
        flush_redis()
        url = None
        if {"worker", "dispatch", "drain"} & set(chosen) or args.profile:
            url, receiver_kind = start_instant_receiver(procs, tmp)
            say(f"instant receiver: {receiver_kind} at {url}")
        results["machine"] = machine(receiver_kind)
        say("machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()))
        steps: dict[str, Callable[[], Any]] = {
            "worker": lambda: scenario_worker(procs, tmp, url, sizes),
            "slow": lambda: scenario_slow(procs, tmp, sizes),
            "dispatch": lambda: scenario_dispatch(tmp, url, sizes),
            "drain": lambda: scenario_drain(procs, tmp, url, sizes),
        }
        for name in chosen:
            results[name] = steps[name]()
        if args.profile:
            results["profile"] = profile_worker(procs, tmp, url, max(1000, sizes.ours))
    finally:
        procs.close()
        try:
            flush_redis()
        except redis.RedisError as exc:
            say(f"could not flush Redis DB 4 at the end: {exc}")
    results["elapsed_s"] = time.perf_counter() - started
    markdown = render(results)
    stem = "quick" if args.quick else "full"
    if args.only:
        stem += f"-{args.only}"
    for name in ("latest", stem):
        (RESULTS / f"{name}.md").write_text(markdown)
        (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    if "slow" in results:
        chart(results["slow"], RESULTS / "slow_receivers.png", results["machine"]["nproc"])
    if not args.quick and not args.only:
        update_readme(markdown)
    shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
