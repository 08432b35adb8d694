"""Fixtures that start or reach real servers: Redis (a dedicated DB index, flushed before and
after each test), SQLite and PostgreSQL for the store, HTTP receivers on 127.0.0.1, and real
worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
import yaml

from dispatcher.config import Settings, parse_settings
from dispatcher.runtime import Runtime, set_runtime
from tests.servers import ScriptedReceiver

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.1, message: str = "condition"
) -> Any:
    """Polls until ``predicate()`` is truthy; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


BLOCKING_COMMANDS = {"blmove", "blpop", "brpop", "brpoplpush", "bzpopmin"}


def _drop_blocked_clients(client: redis.Redis) -> list[str]:
    """Clients of the test DB still blocked on a queue from an earlier test (a worker whose
    process died without its socket being closed, behind a proxy or in a deleted namespace):
    they would take this test's jobs. Each is disconnected; their addresses are returned."""
    db = str(client.connection_pool.connection_kwargs.get("db", 0))
    ghosts = [c for c in client.client_list() if c.get("db") == db and c.get("cmd") in BLOCKING_COMMANDS]
    for ghost in ghosts:
        client.client_kill_filter(_id=ghost["id"])
    return [g["addr"] for g in ghosts]


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    _drop_blocked_clients(client)
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _reset_postgres() -> None:
    """Drops every table of the test database (the dispatcher's, Alembic's, a test's own)."""
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        for table in sa.inspect(conn).get_table_names():
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}" CASCADE')
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'webhooks.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    _reset_postgres()
    yield PG_URL
    _reset_postgres()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Both backends: tests that take this run once on SQLite and once on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'webhooks.db'}"
    else:
        _reset_postgres()
        yield PG_URL
        _reset_postgres()


@pytest.fixture
def receiver() -> Iterator[ScriptedReceiver]:
    server = ScriptedReceiver()
    yield server
    server.close()


def settings_dict(
    *,
    redis_url: str,
    database_url: str,
    tmp_path: Path,
    endpoints: list[dict] | None = None,
    delivery: dict | None = None,
    **extra: Any,
) -> dict:
    raw = {
        "source": "Baremeds",
        "environment": "test",
        "redis_url": redis_url,
        "database_url": database_url,
        "queue_name": "send-webhook-request",
        "process_log": str(tmp_path / "logs" / "send-webhook-request-process.log"),
        "delivery": {
            "timeout": 5,
            "connect_timeout": 2,
            "max_attempts": 5,
            "backoff": [1],
            **(delivery or {}),
        },
        "endpoints": endpoints or [],
        # The destination guard refuses loopback unless allowed; the test receivers live there.
        "allow_networks": ["127.0.0.0/8", "::1/128"],
    }
    raw.update(extra)
    return raw


@pytest.fixture
def make_runtime(redis_url: str, sqlite_url: str, tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """Builds a Runtime from settings (SQLite unless ``database_url`` is given) and installs it."""
    made: list[Runtime] = []
    previous = None

    def make(**kwargs: Any) -> Runtime:
        nonlocal previous
        kwargs.setdefault("database_url", sqlite_url)
        kwargs.setdefault("redis_url", redis_url)
        raw = settings_dict(tmp_path=tmp_path, **kwargs)
        runtime = Runtime(parse_settings(raw, env={}), worker_name="test-worker")
        before = set_runtime(runtime)
        if not made:
            previous = before
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()
    set_runtime(previous)


class WorkerProcess:
    """A real ``python worker.py`` process with its own config file."""

    def __init__(
        self, config_path: Path, name: str, log_path: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        env = {
            **os.environ,
            "DISPATCHER_CONFIG": str(config_path),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        env.pop("DISPATCHER_REDIS_URL", None)
        env.pop("DISPATCHER_DATABASE_URL", None)
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "wb")  # closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py"), "--name", name],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def write_config(tmp_path: Path, redis_url: str, sqlite_url: str) -> Callable[..., Path]:
    def write(**kwargs: Any) -> Path:
        kwargs.setdefault("database_url", sqlite_url)
        kwargs.setdefault("redis_url", redis_url)
        raw = settings_dict(tmp_path=tmp_path, **kwargs)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    return write


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start(config_path: Path, name: str | None = None, **kwargs: Any) -> WorkerProcess:
        name = name or f"test-worker-{len(workers) + 1}"
        worker = WorkerProcess(config_path, name, tmp_path / f"{name}.out", **kwargs)
        workers.append(worker)
        return worker

    start.workers = workers  # type: ignore[attr-defined] - read by pytest_runtest_makereport
    yield start
    for worker in workers:
        worker.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failed test that started workers shows the end of each worker's log and the clients of
    the test's Redis DB: a delivery that never came is explained there, not in the assertion."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    workers = getattr(getattr(item, "funcargs", {}).get("start_worker"), "workers", [])
    for worker in workers:
        lines = worker.output().splitlines()[-60:]
        report.sections.append((f"worker {worker.name} (last {len(lines)} lines)", "\n".join(lines)))
    if workers:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            db = str(client.connection_pool.connection_kwargs.get("db", 0))
            clients = [
                f"{c.get('addr')} name={c.get('name')} cmd={c.get('cmd')} age={c.get('age')}"
                for c in client.client_list()
                if c.get("db") == db
            ]
            report.sections.append(("redis clients of the test DB", "\n".join(clients)))
        except redis.RedisError as exc:
            report.sections.append(("redis clients of the test DB", f"not read: {exc}"))
        finally:
            client.close()


def settings_from(raw: dict) -> Settings:
    return parse_settings(raw, env={})
