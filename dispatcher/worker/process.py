"""The worker: RQ's non-forking worker with the scheduler, plus a housekeeping thread.

The worker itself runs jobs on its main thread (so the HTTP session keeps its connections
between jobs), and POSTs on the runtime's sender threads. The heartbeat thread keeps the
worker's liveness key fresh, and the lease thread its lease in the database (so reconcile never
takes over a delivery from a live worker, however long an attempt waits on the database, and
whatever Redis lost). The housekeeping thread writes spooled attempt
records once the database answers, and runs reconcile about once a minute when no other
worker has.

Its terminal shows one line per attempt (:func:`dispatcher.worker.recording.attempt_line`) and
RQ's warnings and errors; RQ's own lines about each job ("Job OK", a retry's "... remaining",
"cleaning registries") only with ``verbose``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import uuid
from datetime import UTC, datetime

import redis
from rq import SimpleWorker

from .. import telemetry
from ..config import Settings, default_key_warnings, require_for_worker
from ..logs import log_line, say, setup_terminal
from ..runtime import Runtime, set_runtime
from ..sending.credentials import settings_credential_problems
from ..sending.preflight import endpoint_warnings
from . import liveness, metrics, reconcile
from .housekeeping import RECONCILE_EVERY_SECONDS, Heartbeat, Housekeeping, Lease, Urgency

WORKER_TTL = 60
"""RQ's worker TTL; its blocking dequeue waits WORKER_TTL - 15 s, so the socket timeout is longer."""


def _die_with_parent() -> None:
    """In a child forked by the worker (RQ's scheduler process): SIGTERM back to its default, and
    the kernel asked for SIGTERM when the worker dies, so a worker killed with SIGKILL leaves no
    scheduler behind holding RQ's scheduler lock (Linux only; elsewhere the lock simply expires).

    The child inherits the worker's own SIGTERM handler, which only sets the worker's flags: a
    stop that reaches the child before RQ's scheduler installs its handler (a worker asked to
    stop as it starts) would be swallowed, the scheduler would loop on, and the worker would
    wait for it for ever. With the default, such a SIGTERM ends the child."""
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:  # forked from a thread other than the main one: not RQ's scheduler
        return
    telemetry.forget_in_child()  # the scheduler makes no span: nothing of the worker's is exported twice
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


REDIS_FAULTS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
"""Redis away, failing over to a new primary, or out of reach: the worker waits it out."""


class WebhookWorker(SimpleWorker):
    """A SimpleWorker: no fork per job, so connections are kept from one delivery to the next.

    RQ's loop quits the worker on any Redis error outside its blocking dequeue (its bookkeeping
    around a job, its heartbeat, its suspension check). Here those are expected events: the
    worker logs one line, asks for a reconcile (which re-queues a job Redis lost or that was
    taken and not run: the delivery's truth is in the database) and goes back to the dequeue,
    which waits for Redis. A failover or a partition then needs no restart.

    The methods overridden here and the attributes read (``_stop_requested``, ``pubsub_thread``)
    are RQ's, not its public API: ``docs/rq-edge.md`` lists them, and
    ``tests/queue/test_rq_edge.py`` fails by name when an rq upgrade renames one.
    """

    runtime: Runtime | None = None
    urgency: Urgency | None = None
    dropped: set[str]
    """Jobs taken from Redis whose run or bookkeeping a Redis failure cut short: queued again as
    their delivery says once Redis answers (:func:`reconcile.requeue_dropped`)."""
    max_connection_wait_time = 2.0
    """RQ doubles its wait between tries while Redis is away, up to a minute by default: then a
    worker would look at the queue up to a minute after Redis answers again."""

    def _redis_failed(self, during: str, exc: Exception) -> None:
        log_line(
            logging.WARNING,
            "redis failed; the worker carries on",
            worker=self.name,
            during=during,
            error=f"{type(exc).__name__}: {exc}",
        )
        if self.urgency is not None:
            self.urgency.raise_("redis failed around a job")

    def _requeue_lost_takes(self) -> None:
        runtime = self.runtime
        if runtime is None or not runtime.take_lost:
            return
        try:
            reconcile.requeue_lost_takes(runtime)
        except Exception as exc:  # noqa: BLE001 - Redis or the database still away: next time
            log_line(logging.WARNING, "lost takes not yet looked for", error=type(exc).__name__)
            return
        runtime.take_lost = False

    def _requeue_dropped(self) -> None:
        self._requeue_lost_takes()
        dropped: set[str] = getattr(self, "dropped", set())
        if not dropped or self.runtime is None:
            return
        try:
            reconcile.requeue_dropped(self.runtime, sorted(dropped))
        except Exception as exc:  # noqa: BLE001 - Redis or the database still away: next time
            log_line(
                logging.WARNING, "dropped jobs not yet re-queued", jobs=len(dropped), error=type(exc).__name__
            )
            return
        dropped.clear()

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):  # type: ignore[no-untyped-def]
        self._requeue_dropped()
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except REDIS_FAULTS as exc:  # RQ's own retry covers the dequeue, not its state writes
                self._redis_failed("dequeue", exc)
                if self._stop_requested:
                    return None  # RQ's loop ends as on an empty burst
                time.sleep(self.max_connection_wait_time)

    def set_state(self, state, pipeline=None):  # type: ignore[no-untyped-def]
        try:
            super().set_state(state, pipeline)
        except REDIS_FAULTS as exc:
            self._redis_failed("rq state", exc)

    def unsubscribe(self):  # type: ignore[no-untyped-def]
        """RQ's, with the wait bounded: redis-py 8's ``PubSubWorkerThread.stop()`` joins the
        thread, which may sit in ``get_message(timeout=60)`` (RQ's sleep time), so a stopping
        worker sometimes took a whole minute to exit."""
        thread, pubsub = getattr(self, "pubsub_thread", None), self.pubsub
        if thread is None or pubsub is None:
            return
        self.log.info("Worker %s: unsubscribing from channel %s", self.name, self.pubsub_channel_name)
        try:
            pubsub.unsubscribe()  # type: ignore[no-untyped-call]
        except REDIS_FAULTS:
            pass
        try:
            thread.stop(timeout=1)
        except TypeError:  # redis-py before 8: stop() does not wait
            thread.stop()
        thread.join(timeout=1)
        pubsub.close()

    def execute_job(self, job, queue):  # type: ignore[no-untyped-def]
        try:
            super().execute_job(job, queue)
        except REDIS_FAULTS as exc:
            self._redis_failed(f"job {job.id}", exc)
            if not hasattr(self, "dropped"):
                self.dropped = set()
            self.dropped.add(job.id)

    def heartbeat(self, timeout=None, pipeline=None):  # type: ignore[no-untyped-def]
        try:
            super().heartbeat(timeout, pipeline)
        except REDIS_FAULTS as exc:
            self._redis_failed("rq heartbeat", exc)

    def check_for_suspension(self, burst):  # type: ignore[no-untyped-def]
        try:
            return super().check_for_suspension(burst)
        except REDIS_FAULTS as exc:
            self._redis_failed("suspension check", exc)
            return None

    def run_maintenance_tasks(self):  # type: ignore[no-untyped-def]
        try:
            super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        except REDIS_FAULTS as exc:
            self._redis_failed("rq maintenance", exc)

    def request_stop(self, signum: int, frame: object) -> None:
        if self.runtime is not None:
            self.runtime.stop_requested = True  # a batch in progress ends after its current attempt
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


def _stop_before_rq_listens(worker: WebhookWorker, runtime: Runtime):  # type: ignore[no-untyped-def]
    """A SIGTERM handler for the moment between RQ registering the worker and installing its own
    handlers (it forks the scheduler in between): the default action would kill the worker
    without deregistering it. This asks RQ's loop to stop before its first job instead."""

    def stop(_signum, _frame):  # type: ignore[no-untyped-def]
        worker._stop_requested = True  # checked at the top of RQ's work loop (docs/rq-edge.md)
        runtime.stop_requested = True

    return stop


def warn_at_start(settings: Settings) -> list[str]:
    """What ``config check`` warns about, said again where the operator is looking when a worker
    starts (its terminal and the process log): endpoints on the default key ``xxx``, endpoints
    whose addresses the sender will refuse (every delivery to them would fail), and endpoints
    whose certificate or key files cannot be used or expire soon (the worker still starts: the
    other endpoints' deliveries go on, and these fail with the reason until it is fixed)."""
    errors, expiring = settings_credential_problems(settings, datetime.now(UTC))
    warnings = [*default_key_warnings(settings), *endpoint_warnings(settings), *errors, *expiring]
    warnings += telemetry.warnings(settings.telemetry)
    for warning in warnings:
        log_line(logging.WARNING, "configuration warning", warning=warning)
        say(f"{time.strftime('%H:%M:%S')}  warning: {warning}")
    return warnings


def run_worker(
    settings: Settings,
    *,
    burst: bool = False,
    name: str | None = None,
    reconcile_every: int = RECONCILE_EVERY_SECONDS,
    verbose: bool = False,
) -> bool:
    """Runs one worker until SIGTERM (after the current attempt) or, with ``burst``, an empty queue.

    The connections are checked before the first job: a database or Redis that does not answer
    stops the worker at start-up with a clear error. The terminal gets a line per attempt, and
    RQ's lines about each job only when ``verbose`` (:func:`rq_logging_level`).
    """
    global _worker_pid
    _worker_pid = os.getpid()
    os.register_at_fork(after_in_child=_die_with_parent)
    setup_terminal(settings.secrets())
    runtime = _connected_runtime(settings, name or worker_name())
    worker = WebhookWorker(
        [runtime.queue],
        connection=runtime.redis,
        name=runtime.worker_name,
        worker_ttl=WORKER_TTL,
        maintenance_interval=60,
    )
    worker.runtime = runtime
    _serve_metrics(settings, runtime)
    urgency = Urgency()
    worker.urgency = urgency
    heartbeat = Heartbeat(runtime, urgency)
    heartbeat.beat()
    heartbeat.start()
    lease = Lease(runtime, urgency)
    lease.step()  # before the first claim: a claim is never held without a lease
    lease.start()
    housekeeping = Housekeeping(runtime, reconcile_every, urgency)
    housekeeping.start()
    log_line(
        logging.INFO, "worker started", worker=runtime.worker_name, queue=settings.queue_name, burst=burst
    )
    say(f"{time.strftime('%H:%M:%S')}  worker started: {runtime.worker_name} on {settings.queue_name}")
    stop_early = _stop_before_rq_listens(worker, runtime)
    signal.signal(signal.SIGTERM, stop_early)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a supervisor's child ignores it
        signal.signal(signal.SIGINT, stop_early)
    try:
        return worker.work(burst=burst, with_scheduler=True, logging_level=rq_logging_level(verbose))
    finally:
        _shut_down(runtime, heartbeat, lease, housekeeping)


def rq_logging_level(verbose: bool) -> str:
    """RQ's loggers (its worker, its jobs, its scheduler): every line when ``verbose``, else its
    warnings and errors only -- not a line per job ("Job OK" for a delivery that failed), nor a
    retry's "999999999 remaining" (RQ's counter, never the budget: :data:`.results.RETRY_FOREVER`)."""
    return "INFO" if verbose else "WARNING"


def _serve_metrics(settings: Settings, runtime: Runtime) -> None:
    """Serves the Prometheus metrics when ``metrics`` is configured, and mirrors them to OTLP
    when ``telemetry`` is."""
    if metrics.start_otlp_metrics(runtime):
        log_line(logging.INFO, "metrics exported over OTLP", worker=runtime.worker_name)
    if settings.metrics is not None:
        port = metrics.start_metrics_server(
            settings.metrics.port, runtime, host=settings.metrics.host, search=settings.metrics.port_range
        )
        log_line(logging.INFO, "metrics served", worker=runtime.worker_name, port=port)


def _connected_runtime(settings: Settings, name: str) -> Runtime:
    """The worker's runtime, installed for its jobs, with the database and Redis answering."""
    require_for_worker(settings)
    runtime = Runtime(settings, worker_name=name, redis_socket_timeout=WORKER_TTL + 30)
    set_runtime(runtime)
    warn_at_start(settings)
    runtime.engine  # noqa: B018 - the tables made or at this version's schema, or fail now (StoreUnavailable, SchemaOutdated)
    if runtime.adopt_file_endpoints():
        log_line(logging.INFO, "endpoints imported from the configuration", endpoints=len(settings.endpoints))
    runtime.redis.ping()
    return runtime


def _shut_down(runtime: Runtime, heartbeat: Heartbeat, lease: Lease, housekeeping: Housekeeping) -> None:
    # A SIGTERM that stops RQ's blocking dequeue by an exception leaves that connection in the
    # pool with the dequeue still pending on the server: the next command on it (a heartbeat, a
    # housekeeping lock, mark_dead) would wait for the dequeue's timeout, up to 45 s. Drop them all.
    runtime.redis.connection_pool.disconnect()
    housekeeping.stop()
    metrics.stop_metrics_server()
    if "senders" in runtime.__dict__:  # sends still running (a cold stop) keep their claims alive
        runtime.senders.shutdown(wait=True)
    heartbeat.stop()
    lease.stop()
    try:
        liveness.mark_dead(runtime.redis, runtime.worker_name)
    except Exception:  # noqa: BLE001 - Redis away; the key expires on its own
        pass
    lease.release()
    log_line(logging.INFO, "worker stopped", worker=runtime.worker_name)
    say(f"{time.strftime('%H:%M:%S')}  worker stopped: {runtime.worker_name}")
    telemetry.shutdown_bounded()  # the last attempts' spans and metrics, within 5 s
    runtime.close()
