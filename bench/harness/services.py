"""Redis DB 4 and the ``bench`` database; the machine and code a run describes; burst workers
measured by their queue (:func:`watch_drain`)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from . import CODE, PG_URL, REDIS_URL, SLOW_DELAY
from .processes import tail
from .procfs import cpu_seconds, load_average


def redis_client() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    if client.connection_pool.connection_kwargs.get("db") != 4:
        raise SystemExit("refusing to use a Redis DB other than 4")
    return client


def flush_redis() -> None:
    client = redis_client()
    client.flushdb()
    client.close()


def create_database() -> None:
    """``createdb bench``; it exists already after the first run."""
    subprocess.run(
        ["createdb", "-h", "127.0.0.1", "-U", "postgres", "bench"], capture_output=True, check=False
    )


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


# --- what a run describes -------------------------------------------------------------------


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
