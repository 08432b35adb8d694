"""The worker: RQ's non-forking worker with the scheduler, plus a housekeeping thread.

The worker itself runs jobs on its main thread (so the HTTP session keeps its connections
between jobs), and POSTs on the runtime's sender threads. The heartbeat thread keeps the
worker's liveness key fresh (so reconcile never takes over a delivery from a live worker,
however long an attempt waits on the database). The housekeeping thread writes spooled attempt
records once the database answers, and runs reconcile about once a minute when no other
worker has.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid

from rq import SimpleWorker

from . import metrics, reconcile
from .config import DEFAULT_KEY, Settings
from .jobs import flush_spool
from .logs import log_line
from .runtime import Runtime, set_runtime

HEARTBEAT_SECONDS = 5
WORKER_TTL = 60
"""RQ's worker TTL; its blocking dequeue waits WORKER_TTL - 15 s, so the socket timeout is longer."""
RECONCILE_EVERY_SECONDS = 60


def _die_with_parent() -> None:
    """In a child forked by the worker (RQ's scheduler process): ask the kernel for SIGTERM when
    the worker dies, so a worker killed with SIGKILL leaves no scheduler behind holding RQ's
    scheduler lock. Linux only; elsewhere the lock simply expires."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != _worker_pid:
        os.kill(os.getpid(), signal.SIGTERM)  # the worker died before the request took effect


_worker_pid = os.getpid()


def worker_name() -> str:
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


class Heartbeat(threading.Thread):
    """Keeps the worker's liveness key fresh, and nothing else: no database or reconcile work
    can delay it past the key's TTL (which would let reconcile take over live claims)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(name="dispatcher-heartbeat", daemon=True)
        self.runtime = runtime
        self.stopping = threading.Event()

    def beat(self) -> None:
        try:
            reconcile.mark_alive(self.runtime, self.runtime.worker_name)
        except Exception as exc:  # noqa: BLE001 - Redis away: try again next beat
            log_line(
                logging.WARNING,
                "heartbeat failed",
                worker=self.runtime.worker_name,
                error=f"{type(exc).__name__}: {exc}",
            )

    def run(self) -> None:
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            self.beat()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


class Housekeeping(threading.Thread):
    """Spool flush and reconcile, off the job thread (and off the heartbeat's)."""

    def __init__(self, runtime: Runtime, reconcile_every: int = RECONCILE_EVERY_SECONDS) -> None:
        super().__init__(name="dispatcher-housekeeping", daemon=True)
        self.runtime = runtime
        self.reconcile_every = reconcile_every
        self.stopping = threading.Event()

    def flush(self) -> None:
        try:
            flush_spool(self.runtime)
        except Exception as exc:  # noqa: BLE001
            log_line(logging.WARNING, "spool flush failed", error=f"{type(exc).__name__}: {exc}")

    def maybe_reconcile(self) -> None:
        try:
            report = reconcile.reconcile_if_due(self.runtime, self.runtime.worker_name, self.reconcile_every)
        except Exception as exc:  # noqa: BLE001 - Redis or the database away: next round
            log_line(logging.WARNING, "reconcile failed", error=f"{type(exc).__name__}: {exc}")
            return
        if report and (report.abandoned or report.requeued or report.overdue):
            log_line(
                logging.WARNING,
                "reconcile",
                checked=report.checked,
                abandoned=len(report.abandoned),
                requeued=len(report.requeued),
                overdue=len(report.overdue),
            )

    def recover_own(self) -> None:
        try:
            report = reconcile.recover_own_claims(self.runtime)
        except Exception as exc:  # noqa: BLE001 - the database away: next round
            log_line(logging.WARNING, "own claims check failed", error=f"{type(exc).__name__}: {exc}")
            return
        if report.abandoned:
            log_line(logging.WARNING, "own claims recovered", abandoned=len(report.abandoned))

    def run(self) -> None:
        ticks = 0
        every = max(1, self.reconcile_every // HEARTBEAT_SECONDS)
        while not self.stopping.is_set():
            self.flush()
            if ticks % every == 1:
                self.maybe_reconcile()
            if ticks % every == every // 2:
                self.recover_own()
            ticks += 1
            self.stopping.wait(HEARTBEAT_SECONDS)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


class WebhookWorker(SimpleWorker):
    """A SimpleWorker: no fork per job, so connections are kept from one delivery to the next."""

    runtime: Runtime | None = None

    def request_stop(self, signum, frame):  # type: ignore[no-untyped-def]
        if self.runtime is not None:
            self.runtime.stop_requested = True  # a batch in progress ends after its current attempt
        super().request_stop(signum, frame)


def _stop_before_rq_listens(worker: WebhookWorker, runtime: Runtime):  # type: ignore[no-untyped-def]
    """A SIGTERM handler for the moment between RQ registering the worker and installing its own
    handlers (it forks the scheduler in between): the default action would kill the worker
    without deregistering it. This asks RQ's loop to stop before its first job instead."""

    def stop(_signum, _frame):  # type: ignore[no-untyped-def]
        worker._stop_requested = True  # checked at the top of RQ's work loop (rq 3.x)
        runtime.stop_requested = True

    return stop


def warn_default_keys(settings: Settings) -> list[str]:
    warned = []
    for endpoint in settings.endpoints:
        if endpoint.key == DEFAULT_KEY:
            log_line(
                logging.WARNING,
                "endpoint uses the default key xxx; configure a unique key",
                endpoint=endpoint.name,
            )
            warned.append(endpoint.name)
    return warned


def run_worker(
    settings: Settings,
    *,
    burst: bool = False,
    name: str | None = None,
    reconcile_every: int = RECONCILE_EVERY_SECONDS,
    logging_level: str = "INFO",
) -> bool:
    """Runs one worker until SIGTERM (after the current attempt) or, with ``burst``, an empty queue.

    The connections are checked before the first job: a database or Redis that does not answer
    stops the worker at start-up with a clear error.
    """
    global _worker_pid
    _worker_pid = os.getpid()
    os.register_at_fork(after_in_child=_die_with_parent)
    runtime = Runtime(settings, worker_name=name or worker_name(), redis_socket_timeout=WORKER_TTL + 30)
    set_runtime(runtime)
    warn_default_keys(settings)
    runtime.engine  # noqa: B018 - create the tables, or fail now with StoreUnavailable
    runtime.redis.ping()
    worker = WebhookWorker(
        [runtime.queue],
        connection=runtime.redis,
        name=runtime.worker_name,
        worker_ttl=WORKER_TTL,
        maintenance_interval=60,
    )
    if settings.metrics is not None:
        port = metrics.start_metrics_server(
            settings.metrics.port, runtime, host=settings.metrics.host, search=settings.metrics.port_range
        )
        log_line(logging.INFO, "metrics served", worker=runtime.worker_name, port=port)
    worker.runtime = runtime
    heartbeat = Heartbeat(runtime)
    heartbeat.beat()
    heartbeat.start()
    housekeeping = Housekeeping(runtime, reconcile_every)
    housekeeping.start()
    log_line(
        logging.INFO, "worker started", worker=runtime.worker_name, queue=settings.queue_name, burst=burst
    )
    stop_early = _stop_before_rq_listens(worker, runtime)
    signal.signal(signal.SIGTERM, stop_early)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a supervisor's child ignores it
        signal.signal(signal.SIGINT, stop_early)
    try:
        return worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
    finally:
        housekeeping.stop()
        metrics.stop_metrics_server()
        if "senders" in runtime.__dict__:  # sends still running (a cold stop) keep their claims alive
            runtime.senders.shutdown(wait=True)
        heartbeat.stop()
        try:
            reconcile.mark_dead(runtime, runtime.worker_name)
        except Exception:  # noqa: BLE001 - Redis away; the key expires on its own
            pass
        log_line(logging.INFO, "worker stopped", worker=runtime.worker_name)
        runtime.close()
