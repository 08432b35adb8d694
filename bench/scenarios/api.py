"""Issue 26: the HTTP API's ``POST /v1/events`` on PostgreSQL (database ``bench``) and Redis DB 4.

``dispatcher api --workers 2 --port <free>`` runs as a child process (uvicorn on httptools and
uvloop) with a configuration the benchmark writes: ``environment: test``, two endpoints
subscribed to ``order_changed`` (so each event stores and queues two deliveries), and
``api.rate_limit`` at :data:`RATE_LIMIT`, on but far above what is sent, so the token bucket's
Redis call is paid as a deployment pays it without refusing anything. No worker runs: events are
only stored and queued. A token with the ``send`` scope is made with ``dispatcher api tokens
create`` (read from its stdout, never printed).

The clients run in the benchmark process: asyncio protocols on uvloop writing raw keep-alive
HTTP/1.1 requests on their own sockets (cheaper for the client than httpx, which matters because
client and server share this machine's cores). Each request is a valid ``order_changed`` event
with an ``order_number`` of its own. After a warm-up:

1. **Throughput**: :data:`CLIENTS` connections, each sending its next request as soon as the
   last is answered, for :data:`SECONDS` (10 s; 3 s with ``--quick``): 202s per second, the
   other answers and failures, p50 / p99 latency.
2. **Latency at a fixed rate**: :data:`OPEN_RATE` events/s open loop (send times scheduled in
   advance, not waiting on answers; a pool of :data:`OPEN_CONNECTIONS` connections) for the
   same time: p50 / p95 / p99 from each request's *scheduled* send time to its answer.

The clients run with this process's garbage collector off (a full collection of its heap would
stop them for tens of milliseconds and count as the server's latency). Each phase reads the CPU
seconds of the server's processes (the uvicorn supervisor and its two workers), of the
benchmark process (the clients), of PostgreSQL (every process, and the backends that ended), of
the Redis server, of all cores (``/proc/stat``: *other* is the rest) and the time the host stole
from this VM; the connections made to the ``bench`` database (``pg_stat_database.sessions``);
and how the client connections fell between the two workers (uvicorn's workers share one
listening socket, so one may take most of them). Afterwards the database is checked: two
deliveries stored per 202. When the throughput is under :data:`TARGET_RATE` and py-spy is
installed, one more throughput round runs with py-spy sampling both server workers (``--gil``:
Python CPU on any thread), and where their time goes is written to
``bench/results/api-profile.md`` (folded stacks: ``api-profile-folded.txt``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any, cast

import requests
import sqlalchemy as sa

from bench.harness import CODE, EVENT, KEY, PG_URL, QUICK, RESULTS, Sizes, say
from bench.harness.driver import db_engine, delivery_counts, our_config, reset_database
from bench.harness.processes import Processes, child_env, free_port, tail, wait_for_port
from bench.harness.procfs import CLOCK_TICKS, children_of, cpu_seconds, load_average
from bench.harness.services import flush_redis
from bench.scenarios.dispatch import percentile

API_WORKERS = 2
CLIENTS = 64
OPEN_RATE = 200.0
OPEN_CONNECTIONS = 32
"""The open loop's connections: 200/s at 25 ms is 5 in flight, so a request never waits for one
unless the server is far behind (which the latency then shows)."""
TARGET_RATE = 1000.0
TARGET_P99_MS = 25.0
SECONDS = {"quick": 3.0, "full": 10.0}
WARMUP_SECONDS = {"quick": 2.0, "full": 2.0}
"""Both workers answering, the token cache, the pools and the queries warm."""
PROFILE_HZ = 100
ENDPOINTS = ("bench-a", "bench-b")
RATE_LIMIT = {"per_second": 10000, "burst": 20000}
TOKEN_NAME = "bench-api"
CLIENT_KIND = "raw keep-alive HTTP/1.1 sockets (asyncio protocols on uvloop), in the benchmark process"
BODY_START = (
    b'{"event":"' + EVENT.encode() + b'","data":{"order_number":"API-'
)  # + a number of the request's own
BODY_END = b'","status":"updated","created_at":"2026-01-30T12:00:00Z"}}'


# --- the client: raw HTTP/1.1 on keep-alive sockets --------------------------------------------


def take_response(buffer: bytearray) -> tuple[int, bytes] | None:
    """The first whole response in ``buffer`` (its status and body), removed from it; None while
    it has not all arrived."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    found = re.search(rb"\r\ncontent-length: *(\d+)", head)
    if found is None:
        raise RuntimeError(f"a response without Content-Length: {head[:200]!r}")
    total = end + 4 + int(found.group(1))
    if len(buffer) < total:
        return None
    status, body = int(buffer[9:12]), bytes(buffer[end + 4 : total])
    del buffer[:total]
    return status, body


class Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, answered with (status, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        answer = take_response(self.buffer)
        if answer is not None:
            self.waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    async def request(self, payload: bytes) -> tuple[int, bytes]:
        if self.transport is None:
            raise ConnectionError("the connection is closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class Tally:
    """What a phase's requests were answered."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    waited: list[float] = field(default_factory=list)
    failed: int = 0
    first_refusal: str | None = None
    elapsed: float = 0.0
    spread: list[int] = field(default_factory=list)


def connections_per_process(port: int, pids: list[int]) -> list[int]:
    """How many established connections to ``port`` each process holds (``/proc/net/tcp``'s
    sockets matched to each process's file descriptors)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(fields[9])
    counts = []
    for pid in pids:
        held = 0
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    link = os.readlink(fd)
                except OSError:
                    continue
                held += link.startswith("socket:[") and link[8:-1] in inodes
        except OSError:
            pass
        counts.append(held)
    return counts


class Client:
    """Requests to ``POST /v1/events`` with the token, each a new order number."""

    def __init__(self, port: int, token: str, workers: list[int]) -> None:
        self.port = port
        self.workers = workers
        self.accepted_before = 0
        """Events accepted before the measured phases (while waiting for the server)."""
        self.head = (
            f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()
        self.sent = 0

    def payload(self) -> bytes:
        self.sent += 1
        body = BODY_START + str(self.sent).encode() + BODY_END
        return self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body

    async def spread(self, tally: Tally, after: float) -> None:
        """The connections each server worker holds, ``after`` seconds into a phase."""
        await asyncio.sleep(after)
        tally.spread = connections_per_process(self.port, self.workers)

    async def connect(self) -> Connection:
        _transport, conn = await asyncio.get_running_loop().create_connection(
            Connection, "127.0.0.1", self.port
        )
        return conn

    async def send(self, conn: Connection, tally: Tally, due: float) -> Connection:
        """One request on ``conn`` (a new connection if the server closed it), timed from
        ``due``; returns the connection to use next."""
        if conn.transport is None:  # closed by the server after its last answer
            conn = await self.connect()
        try:
            status, body = await conn.request(self.payload())
        except ConnectionError:
            tally.failed += 1
            conn.close()
            return await self.connect()
        tally.latencies.append(time.perf_counter() - due)
        tally.statuses[status] += 1
        if status != 202 and tally.first_refusal is None:
            tally.first_refusal = f"{status} {body[:300].decode(errors='replace')}"
        return conn


async def closed_loop(client: Client, seconds: float, clients: int) -> Tally:
    """``clients`` connections, each sending again as soon as it is answered, for ``seconds``;
    ``elapsed`` runs to the last answer."""
    conns = [await client.connect() for _ in range(clients)]
    tally = Tally()
    started = time.perf_counter()
    deadline = started + seconds

    async def one(conn: Connection) -> Connection:
        while time.perf_counter() < deadline:
            conn = await client.send(conn, tally, time.perf_counter())
        return conn

    looked = asyncio.create_task(client.spread(tally, min(1.0, seconds / 2)))
    done = await asyncio.gather(*(one(c) for c in conns))
    await looked
    tally.elapsed = time.perf_counter() - started
    for conn in done:
        conn.close()
    return tally


async def open_loop(client: Client, rate: float, seconds: float, connections: int) -> Tally:
    """``rate`` requests a second sent at times scheduled in advance, whatever the answers;
    latency from each request's scheduled time; ``waited``: how late each went out (the
    scheduler's lateness plus any wait for a free connection)."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await client.connect())
    tally = Tally()
    tasks = []

    async def one(due: float) -> None:
        conn = await pool.get()
        tally.waited.append(time.perf_counter() - due)
        pool.put_nowait(await client.send(conn, tally, due))

    looked = asyncio.create_task(client.spread(tally, min(1.0, seconds / 2)))
    started = time.perf_counter() + 0.05
    for i in range(int(rate * seconds)):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks, looked)
    tally.elapsed = time.perf_counter() - started
    while not pool.empty():
        pool.get_nowait().close()
    return tally


def run_async(coro: Any) -> Any:
    """``coro`` on a uvloop loop (asyncio's own when uvloop is missing), with this process's
    garbage collector off: a full collection of the benchmark process's heap (it imported the
    code under test) stops the clients for tens of milliseconds, which would count as the
    server's latency. The clients make no reference cycles worth collecting in a phase."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = asyncio.new_event_loop
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(coro)
    finally:
        gc.enable()
        gc.unfreeze()


# --- the server and its CPU --------------------------------------------------------------------


def api_config(tmp: Path, url: str | None) -> Path:
    """The configuration the API and the token command read: two endpoints for ``order_changed``
    (never sent to: no worker runs), the rate limit high, environment test."""
    target = url or "http://127.0.0.1:9/hook"
    endpoints = [{"name": name, "url": target, "key": KEY, "events": [EVENT]} for name in ENDPOINTS]
    extra = {"environment": "test", "endpoints": endpoints, "api": {"rate_limit": RATE_LIMIT}}
    path, _raw = our_config(tmp, "api", target, PG_URL, extra=extra)
    return path


def create_token(config: Path) -> str:
    """A ``send`` token made by the CLI (``dispatcher api tokens create``); only its stdout
    line is the token."""
    cmd = [sys.executable, "-m", "dispatcher", "api", "tokens", "create", TOKEN_NAME, "--scopes", "send"]
    done = subprocess.run(cmd, cwd=CODE, env=child_env(config), capture_output=True, text=True, timeout=60)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"dispatcher api tokens create failed ({done.returncode}): {done.stderr[-500:]}")
    return done.stdout.strip().splitlines()[-1]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def server_workers(server: Popen[bytes]) -> list[int]:
    """The uvicorn worker processes (spawned children of the supervisor)."""
    return sorted(pid for pid in children_of({server.pid}) if "spawn_main" in cmdline(pid))


def start_server(procs: Processes, config: Path, port: int, token: str) -> tuple[Popen[bytes], int]:
    """``dispatcher api --workers 2``, waited for until both workers run and a request is
    accepted (60 s at most); returns it and the events it accepted meanwhile."""
    cmd = [sys.executable, "-m", "dispatcher", "api", "--workers", str(API_WORKERS), "--port", str(port)]
    server = procs.start("api", cmd, child_env(config))
    wait_for_port(port, server, timeout=60)
    deadline = time.monotonic() + 60
    url = f"http://127.0.0.1:{port}/v1/events"
    body = BODY_START + b"0" + BODY_END
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    accepted = 0
    while True:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"dispatcher api did not start:\n{tail(server)}")
        try:
            answer = requests.post(url, data=body, headers=headers, timeout=10)
        except requests.RequestException:
            time.sleep(0.2)
            continue
        if answer.status_code != 202:
            raise RuntimeError(f"dispatcher api answered {answer.status_code}: {answer.text[:300]}")
        accepted += 1
        if len(server_workers(server)) == API_WORKERS:
            return server, accepted
        time.sleep(0.2)


def busy_seconds() -> tuple[float, float]:
    """Busy CPU seconds of all cores since boot (``/proc/stat``: all but idle, iowait and
    steal), and the seconds stolen by the hypervisor (other guests on the host)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4] - fields[7]) / CLOCK_TICKS, fields[7] / CLOCK_TICKS


def postgres_seconds() -> float:
    """CPU seconds of PostgreSQL since it started, as far as ``/proc`` tells: every live
    ``postgres`` process, and what the postmaster reaped (backends that ended, so a connection
    opened and closed within a phase counts too). Every database's, not only ``bench``'s."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if comm == "postgres":
            found[int(entry.name)] = ppid
    return sum(cpu_seconds(pid, reaped_children=ppid not in found) for pid, ppid in found.items())


def redis_pids() -> list[int]:
    """The Redis server on 6379 (it serves every DB, others' too)."""
    return [
        int(e.name)
        for e in Path("/proc").iterdir()
        if e.name.isdigit()
        and cmdline(int(e.name)).startswith("redis-server ")
        and ":6379" in cmdline(int(e.name))
    ]


def bench_sessions() -> int:
    """Connections ever made to the ``bench`` database (``pg_stat_database.sessions``, read from
    the ``postgres`` database so the reading adds none)."""
    engine = sa.create_engine(PG_URL.rsplit("/", 1)[0] + "/postgres", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
            found = conn.exec_driver_sql(
                "SELECT sessions FROM pg_stat_database WHERE datname = 'bench'"
            ).scalar_one_or_none()
    finally:
        engine.dispose()
    return int(found or 0)


class Meter:
    """CPU seconds over a phase: the server's processes, this process (the clients),
    PostgreSQL, the Redis server, all cores; and the connections made to ``bench``."""

    def __init__(self, server: Popen[bytes]) -> None:
        self.pids = [server.pid, *server_workers(server)]
        self.redis = redis_pids()
        self.start = self.read()

    def read(self) -> dict[str, Any]:
        return {
            "server": [cpu_seconds(pid) for pid in self.pids],
            "client": time.process_time(),
            "postgresql": postgres_seconds(),
            "redis": sum(map(cpu_seconds, self.redis)),
            **dict(zip(("machine", "steal"), busy_seconds(), strict=True)),
            "sessions": bench_sessions(),
            "at": time.perf_counter(),
        }

    def stop(self) -> dict[str, Any]:
        at = time.perf_counter()
        end = self.read()
        per_process = [b - a for a, b in zip(self.start["server"], end["server"], strict=True)]
        used = {k: end[k] - self.start[k] for k in ("client", "postgresql", "redis", "machine", "steal")}
        server = sum(per_process)
        return {
            "wall_s": at - self.start["at"],
            "server_cpu_s": server,
            "server_cpu_per_process_s": per_process,
            "client_cpu_s": used["client"],
            "postgresql_cpu_s": used["postgresql"],
            "redis_cpu_s": used["redis"],
            "machine_busy_s": used["machine"],
            "other_cpu_s": max(
                0.0, used["machine"] - server - used["client"] - used["postgresql"] - used["redis"]
            ),
            "steal_s": used["steal"],
            "pg_sessions": end["sessions"] - self.start["sessions"],
        }


# --- the phases --------------------------------------------------------------------------------


def summary(tally: Tally, cpu: dict[str, Any]) -> dict[str, Any]:
    """A phase's figures: accepted per second, refusals, failures, latency percentiles (ms),
    CPU."""
    ms = [x * 1000 for x in tally.latencies] or [0.0]
    accepted = tally.statuses.get(202, 0)
    out: dict[str, Any] = {
        "requests": len(tally.latencies) + tally.failed,
        "accepted": accepted,
        "errors": len(tally.latencies) - accepted + tally.failed,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "failed_connections": tally.failed,
        "first_refusal": tally.first_refusal,
        "elapsed_s": tally.elapsed,
        "events_per_s": accepted / tally.elapsed if tally.elapsed else 0.0,
        "p50_ms": percentile(ms, 0.50),
        "p95_ms": percentile(ms, 0.95),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": max(ms),
        "load_average_1m": load_average(),
        "connections_per_worker": tally.spread,
        **cpu,
    }
    out["server_cpu_ms_per_event"] = cpu["server_cpu_s"] * 1000 / accepted if accepted else None
    out["lopsided"] = lopsided(out)
    out["cores_busy"] = cpu["machine_busy_s"] / cpu["wall_s"] if cpu["wall_s"] else 0.0
    if tally.waited:
        waited = [x * 1000 for x in tally.waited]
        out["sent_late_p99_ms"] = percentile(waited, 0.99)
        out["sent_late_max_ms"] = max(waited)
    return out


def throughput(server: Popen[bytes], client: Client, seconds: float) -> dict[str, Any]:
    meter = Meter(server)
    tally = run_async(closed_loop(client, seconds, CLIENTS))
    return summary(tally, meter.stop())


def fixed_rate(server: Popen[bytes], client: Client, seconds: float) -> dict[str, Any]:
    meter = Meter(server)
    tally = run_async(open_loop(client, OPEN_RATE, seconds, OPEN_CONNECTIONS))
    return {"rate": OPEN_RATE, "connections": OPEN_CONNECTIONS, **summary(tally, meter.stop())}


SKEWED = 0.75
"""One worker holding more than this share of the connections makes a phase lopsided."""


def lopsided(r: dict[str, Any]) -> bool:
    """Whether one worker held most of the phase's connections (so it measures mostly one)."""
    spread = r["connections_per_worker"]
    return bool(spread) and sum(spread) > 0 and max(spread) > SKEWED * sum(spread)


def cpu_line(r: dict[str, Any]) -> str:
    per = " + ".join(f"{x:.2f}" for x in r["server_cpu_per_process_s"])
    spread = " + ".join(map(str, r["connections_per_worker"])) or "?"
    return (
        f"connections per worker {spread}; "
        f"CPU over {r['wall_s']:.1f} s: server {r['server_cpu_s']:.2f} s ({per}: supervisor + workers), "
        f"clients {r['client_cpu_s']:.2f} s, PostgreSQL {r['postgresql_cpu_s']:.2f} s, "
        f"redis-server {r['redis_cpu_s']:.2f} s, other {r['other_cpu_s']:.2f} s, stolen by the host "
        f"{r['steal_s']:.2f} s; "
        f"{r['pg_sessions']} new connections to bench; "
        f"{r['cores_busy']:.2f} cores busy; load {r['load_average_1m']:.1f}"
    )


def stored_check(accepted: int) -> dict[str, Any]:
    """The deliveries in the database against two per accepted event."""
    engine = db_engine(PG_URL)
    counts = delivery_counts(engine)
    engine.dispose()
    stored = sum(counts.values())
    return {
        "accepted_total": accepted,
        "deliveries_stored": stored,
        "ok": stored == len(ENDPOINTS) * accepted,
    }


# --- the profile -------------------------------------------------------------------------------


PROFILE_GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("the event loop's thread (HTTP, Starlette, our handlers)", ("Runner.run (asyncio/runners.py",)),
    (
        "  uvicorn + httptools: read and parse requests",
        ("data_received (uvicorn/protocols/http/httptools_impl.py",),
    ),
    ("  auth: Gate.check (token, rate limit)", ("Gate.check (dispatcher/api/auth.py",)),
    ("    the rate limit's Lua call to Redis", ("RateLimiter.admit (dispatcher/api/ratelimit.py",)),
    ("  read + parse the body (api.bodies.json_object)", ("json_object (dispatcher/api/bodies.py",)),
    ("  the request's shape (events.one_request)", ("one_request (dispatcher/api/events.py",)),
    (
        "  thread-pool hand-offs (run_in_threadpool, loop side)",
        ("run_in_threadpool (starlette/concurrency.py",),
    ),
    (
        "  the 202's JSONResponse, built and sent",
        ("JSONResponse.__init__ (starlette/", "Response.__call__ (starlette/"),
    ),
    ("other threads (the gather thread, thread-pool workers)", ("_bootstrap (threading.py",)),
    (
        "  intake: the gates (itemized._admitted / _admit_each)",
        ("_admit", "admit (dispatcher/intake/prepare.py"),
    ),
    ("  intake: build the payloads (itemized._built)", ("_built (dispatcher/intake/itemized.py",)),
    ("  store: INSERT the deliveries (store.insert_deliveries)", ("insert_deliveries (dispatcher/store/",)),
    ("    of which making new PostgreSQL connections", ("Pool._create_connection (sqlalchemy/pool/",)),
    ("  queue: the RQ jobs (queue.jobs.enqueue_new)", ("enqueue_new (dispatcher/queue/jobs.py",)),
    ("  the process log line (intake.dispatch.log_stored)", ("log_stored (dispatcher/intake/dispatch.py",)),
]
"""(what, a stack with a frame containing any of these is in it); shares are inclusive."""


def strip_line(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame)


def profile_summary(stacks: list[tuple[list[str], int]], events: int) -> dict[str, Any]:
    """Shares of the samples: the groups (inclusive), the heaviest leaf frames (self), and the
    heaviest frames of ours and Starlette's (inclusive)."""
    total = sum(c for _f, c in stacks) or 1
    groups = []
    for name, needles in PROFILE_GROUPS:
        hits = sum(c for f, c in stacks if any(n in x for x in f for n in needles))
        groups.append({"name": name, "share": hits / total})
    selfs: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        selfs[strip_line(frames[-1])] += count
        for frame in {strip_line(f) for f in frames}:
            inclusive[frame] += count
    ours = [(f, c) for f, c in inclusive.most_common() if "dispatcher/" in f or "starlette/" in f]
    return {
        "rate_hz": PROFILE_HZ,
        "samples": total,
        "cpu_s": total / PROFILE_HZ,
        "events": events,
        "ms_per_event": total / PROFILE_HZ * 1000 / events if events else None,
        "groups": groups,
        "top_self": [{"frame": f, "share": c / total} for f, c in selfs.most_common(20)],
        "top_inclusive": [{"frame": f, "share": c / total} for f, c in ours[:25]],
    }


def read_raw(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def profiled(
    procs: Processes, tmp: Path, server: Popen[bytes], client: Client, seconds: float
) -> dict[str, Any] | None:
    """One more throughput round with py-spy sampling each server worker (``--gil``,
    ``--nonblocking``); the round's figures and where the workers' time went."""
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists():
        say("   py-spy is not installed: no profile (.venv/bin/pip install py-spy)")
        return None
    spies, outs = [], []
    for pid in server_workers(server):
        out = tmp / f"api-profile-{pid}.txt"
        cmd = [pyspy, "record", "--pid", str(pid), "--gil", "--nonblocking", "--rate", str(PROFILE_HZ)]
        cmd += ["--format", "raw", "--duration", str(int(seconds) + 2), "-o", str(out)]
        spies.append(procs.start(f"py-spy-{pid}", cmd))
        outs.append(out)
    time.sleep(1.0)  # py-spy attached
    r = throughput(server, client, seconds)
    for spy in spies:
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    procs.stop(spies)
    stacks = [s for out in outs if out.exists() for s in read_raw(out)]
    if not stacks:
        say("   py-spy wrote nothing:\n" + "\n".join(tail(s) for s in spies))
        return None
    out = {"round": r, **profile_summary(stacks, r["accepted"])}
    write_profile(out, stacks)
    return out


def write_profile(p: dict[str, Any], stacks: list[tuple[list[str], int]]) -> None:
    merged: Counter[str] = Counter()
    for frames, count in stacks:
        merged[";".join(strip_line(f) for f in frames)] += count
    (RESULTS / "api-profile-folded.txt").write_text("".join(f"{k} {v}\n" for k, v in merged.most_common(300)))
    (RESULTS / "api-profile.md").write_text("\n".join(profile_lines(p)) + "\n")


def profile_lines(p: dict[str, Any]) -> list[str]:
    r = p["round"]
    per = f"{p['ms_per_event']:.2f}" if p["ms_per_event"] is not None else "-"
    lines = [
        "# py-spy profile of the API's two workers under 64 clients (PostgreSQL)",
        "",
        f"GIL-holding samples at {p['rate_hz']} Hz (Python CPU on any thread; waiting left out): "
        f"{p['cpu_s']:.1f} s over {r['wall_s']:.1f} s (the workers' CPU by /proc: "
        f"{sum(r['server_cpu_per_process_s'][1:]):.1f} s), {r['accepted']} events accepted "
        f"({r['events_per_s']:.0f}/s under py-spy) = {per} ms per event.",
        "",
        "| share | where (inclusive) |",
        "|---:|---|",
    ]
    lines += [f"| {g['share'] * 100:.1f}% | {g['name']} |" for g in p["groups"]]
    lines += [
        "",
        "Heaviest frames of ours and Starlette's (inclusive):",
        "",
        "| share | frame |",
        "|---:|---|",
    ]
    lines += [f"| {t['share'] * 100:.1f}% | `{t['frame']}` |" for t in p["top_inclusive"]]
    lines += ["", "Heaviest leaf frames (self):", "", "| share | frame |", "|---:|---|"]
    lines += [f"| {t['share'] * 100:.1f}% | `{t['frame']}` |" for t in p["top_self"]]
    return lines


# --- the scenario ------------------------------------------------------------------------------


def say_throughput(t: dict[str, Any], seconds: float) -> None:
    say(
        f"   throughput, {CLIENTS} clients for {seconds:.0f} s: {t['events_per_s']:.0f} events/s accepted "
        f"({t['accepted']} 202s, {t['errors']} errors {t['statuses']}), p50 {t['p50_ms']:.1f} ms, "
        f"p99 {t['p99_ms']:.1f} ms; server CPU {t['server_cpu_ms_per_event'] or 0:.2f} ms/event"
    )
    say("      " + cpu_line(t))
    if t["lopsided"]:
        say(
            "      lopsided: one worker took most connections (uvicorn's workers share one listening "
            "socket; the first to wake accepts a burst), so this is mostly one worker's rate"
        )
    if t["first_refusal"]:
        say(f"      first refusal: {t['first_refusal']}")


def say_fixed_rate(f: dict[str, Any], seconds: float) -> None:
    say(
        f"   fixed rate {OPEN_RATE:.0f}/s open loop for {seconds:.0f} s: p50 {f['p50_ms']:.1f} ms, "
        f"p95 {f['p95_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, max {f['max_ms']:.1f} ms "
        f"({f['accepted']} 202s, {f['errors']} errors; sent late p99 {f['sent_late_p99_ms']:.2f} ms)"
    )
    say("      " + cpu_line(f))
    if f["first_refusal"]:
        say(f"      first refusal: {f['first_refusal']}")


def warm_up(server: Popen[bytes], client: Client, seconds: float) -> dict[str, Any]:
    """The warm-up round (both workers answering, caches and pools warm); fails the scenario
    when nothing was accepted."""
    warm = throughput(server, client, seconds)
    say(f"   warm-up {warm['elapsed_s']:.1f} s: {warm['events_per_s']:.0f}/s; " + cpu_line(warm))
    if not warm["accepted"]:
        raise RuntimeError(
            f"the warm-up had no request accepted: {warm['statuses']}, {warm['failed_connections']} "
            f"failed connections, first refusal {warm['first_refusal']}:\n{tail(server)}"
        )
    return warm


def measure(procs: Processes, tmp: Path, server: Popen[bytes], client: Client, size: str) -> dict[str, Any]:
    """Warm-up, throughput, the fixed rate, the database's check, and the profile when the
    throughput misses its target."""
    seconds = SECONDS[size]
    warm = warm_up(server, client, WARMUP_SECONDS[size])
    out: dict[str, Any] = {
        "workers": API_WORKERS,
        "clients": CLIENTS,
        "client": CLIENT_KIND,
        "endpoints": len(ENDPOINTS),
        "rate_limit": RATE_LIMIT,
        "seconds": seconds,
        "cores": len(os.sched_getaffinity(0)),
        "target_rate": TARGET_RATE,
        "target_p99_ms": TARGET_P99_MS,
    }
    out["throughput"] = t = throughput(server, client, seconds)
    say_throughput(t, seconds)
    time.sleep(1.0)
    out["fixed_rate"] = f = fixed_rate(server, client, seconds)
    say_fixed_rate(f, seconds)
    accepted = client.accepted_before + warm["accepted"] + t["accepted"] + f["accepted"]
    out["stored"] = stored = stored_check(accepted)
    say(
        f"   database: {stored['deliveries_stored']} deliveries for {accepted} accepted events "
        f"(2 each: {stored['ok']})"
    )
    if t["events_per_s"] < TARGET_RATE:
        say(f"   throughput under {TARGET_RATE:.0f}/s: one more round with py-spy on the server workers")
        out["profile"] = p = profiled(procs, tmp, server, client, seconds)
        if p:
            say("   " + "\n   ".join(profile_lines(p)[2:]))
    return out


def run(procs: Processes, tmp: Path, url: str | None, sizes: Sizes) -> dict[str, Any]:
    """The API started with a token of its own, then measured (:func:`measure`); every figure
    printed."""
    size = "quick" if sizes == QUICK else "full"
    flush_redis()
    reset_database(PG_URL)
    config = api_config(tmp, url)
    token = create_token(config)
    port = free_port()
    say(
        f"api: dispatcher api --workers {API_WORKERS} on port {port}, PostgreSQL, no workers; clients: "
        f"{CLIENT_KIND}; {len(os.sched_getaffinity(0))} cores"
    )
    server, accepted = start_server(procs, config, port, token)
    client = Client(port, token, server_workers(server))
    client.accepted_before = accepted
    try:
        out = measure(procs, tmp, server, client, size)
    finally:
        procs.stop([server])
    flush_redis()
    return out
