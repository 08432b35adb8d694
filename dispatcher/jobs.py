"""The RQ job: attempts of deliveries, from claim to record.

claim (database) -> POST (:mod:`delivery`, on the runtime's sender threads) -> decide
(:mod:`retry`) -> record (database, with retries, else the local spool) -> return ``rq.Retry``
so RQ's scheduler runs the next attempt. A worker never sleeps through a backoff.

One RQ job delivers its own delivery and, while it runs, more queued ones taken from the head
of the queue (a batch, :func:`deliver`): claims are made a group at a time in one statement,
up to ``worker.threads`` POSTs are in flight at once (with as many more claimed, waiting their
turn), and the attempts that finish together are recorded in one transaction. Each delivery keeps its own claim, attempt row, retry and job.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from rq import Retry, get_current_job
from sqlalchemy.exc import SQLAlchemyError
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from . import delivery, health, limits, metrics, payload, queue, signing, spool, store
from . import retry as policy
from .config import DeliverySettings, Endpoint
from .errors import PoisonJob
from .logs import log_line
from .runtime import Runtime, get_runtime

T = TypeVar("T")
REDACTED_HEADER = "[redacted]"
CLAIM_RETRY_SECONDS = 15
"""When the database refuses the claim, the job is rescheduled this long later."""
RETRY_FOREVER = 10**9
"""RQ's own retry counter is never the budget: the delivery table is."""
BATCH_MAX = 200
"""Most queued jobs one RQ job takes after its own (see :func:`deliver`)."""
SCHEDULER_SLACK_SECONDS = 1
"""RQ computes a retry's time from its own clock after the job returns and its scheduled
registry truncates that time to whole seconds, which can make a wait up to a second short.
One more second keeps every wait at least as long as the policy's ``next_attempt_at``."""
HELD_BACK_SECONDS = math.ceil(health.CACHE_SECONDS) + SCHEDULER_SLACK_SECONDS + 1
"""A delivery held back by a 410 comes back after every worker's disabled cache was re-read."""


_DB_WRITE = Retrying(
    retry=retry_if_exception(store.is_transient),
    stop=stop_after_delay(20),
    wait=wait_exponential(multiplier=0.2, max=5),
    reraise=True,
)
"""A database write that failed for a reason that may pass is tried again for up to 20 s (built
once: only the job's thread uses it)."""


def _db_write(fn: Callable[..., T]) -> Callable[..., T]:
    return functools.partial(_DB_WRITE, fn)


def record(runtime: Runtime, entries: list[tuple[store.AttemptRecord, str | None]], worker: str) -> None:
    """Writes attempts (each with its reason) in one transaction, retrying while the database is
    away; if it still refuses, holds each in the spool. When the group fails for a reason that
    will not pass (bad data), each is written on its own, so one bad record holds back no other."""
    try:
        _db_write(store.record_attempts)(runtime.engine, entries, worker)
        return
    except SQLAlchemyError as exc:
        if store.is_transient(exc) or len(entries) == 1:
            _hold(runtime, entries, worker, exc)
            return
    for entry in entries:
        try:
            _db_write(store.record_attempts)(runtime.engine, [entry], worker)
        except SQLAlchemyError as exc:
            _hold(runtime, [entry], worker, exc)


def _hold(
    runtime: Runtime, entries: list[tuple[store.AttemptRecord, str | None]], worker: str, exc: SQLAlchemyError
) -> None:
    for attempt, reason in entries:
        held = spool.hold(runtime.spool_dir, attempt, worker, reason)
        log_line(
            logging.ERROR,
            "database refused the attempt record; held in the spool until it answers",
            request_id=attempt.request_id,
            attempt=attempt.attempt,
            spool=held.name,
            error=store.describe_error(exc),
        )


def flush_spool(runtime: Runtime) -> int:
    """Writes held attempt records to the database; returns how many."""

    def set_aside(path: Path, exc: Exception) -> None:
        log_line(
            logging.ERROR,
            "spooled attempt record refused for good; set aside, its delivery is recovered by reconcile",
            spool=path.name,
            error=store.describe_error(exc),
        )

    try:
        written = spool.flush(
            runtime.spool_dir,
            lambda rec, worker, reason: store.record_attempt(runtime.engine, rec, worker, reason),
            # the database away, or the disk: try again; a record it refuses, or a corrupt file: set aside
            retry_later=lambda exc: (
                store.is_transient(exc) if isinstance(exc, SQLAlchemyError) else isinstance(exc, OSError)
            ),
            set_aside=set_aside,
        )
    except SQLAlchemyError:
        return 0
    if written:
        log_line(logging.WARNING, "spooled attempt records written to the database", count=written)
    return written


POISON = object()
"""The result of a job whose request_id has no delivery row."""
Result = Retry | None | object
"""What a delivery's job does next: ``rq.Retry`` (schedule it), None (done) or :data:`POISON`."""


def _attempt_record(
    claim: store.Claim, url: str, outcome: str, now: datetime, **fields: Any
) -> store.AttemptRecord:
    return store.AttemptRecord(
        request_id=claim.request_id,
        event=claim.event,
        endpoint=claim.endpoint,
        url=url,
        attempt=claim.attempt,
        outcome=outcome,
        created_at=now,
        **fields,
    )


@dataclass
class _Sending:
    """A claimed delivery whose POST is on a sender thread."""

    claim: store.Claim
    endpoint: Endpoint
    rules: DeliverySettings
    body: bytes
    logged_body: str
    headers: dict[str, str]
    limited: bool


def _send(
    runtime: Runtime, sending: _Sending, gone: set[str]
) -> tuple[delivery.DeliveryOutcome | None, datetime]:
    """Runs on a sender thread: the signature (timestamped now, not when the delivery was
    claimed, since it may have waited its turn) and the POST.

    ``gone`` holds the endpoints that answered ``410 Gone`` during this flight (unless
    ``retry_4xx`` makes 410 retryable): a delivery waiting its turn for one of them is not sent
    (outcome None). The sender thread adds the endpoint itself, so a thread that picks up the
    next delivery at once already knows."""
    if sending.endpoint.name in gone:
        return None, datetime.now(UTC)
    try:
        if sending.endpoint.signing_secrets:
            sending.headers.update(
                signing.signature_headers(
                    sending.claim.request_id, int(time.time()), sending.body, sending.endpoint.signing_keys()
                )
            )
        outcome = delivery.post(
            runtime.http,
            sending.endpoint.url,
            sending.body,
            sending.headers,
            timeout=sending.rules.timeout,
            connect_timeout=sending.rules.connect_timeout,
            response_body_limit=sending.rules.response_body_limit,
            verify=sending.rules.verify,
        )
        if outcome.http_status == 410 and 410 not in sending.rules.retry_4xx:
            gone.add(sending.endpoint.name)
    except Exception as exc:  # noqa: BLE001 - a bug must not leave the claim unrecorded
        outcome = delivery.DeliveryOutcome(
            None, "connection_error", f"unexpected {type(exc).__name__} while sending", None, 0
        )
    return outcome, datetime.now(UTC)


class Flight:
    """The deliveries one RQ job has under way: claimed a group at a time (:meth:`start`), POSTed
    on the runtime's sender threads, recorded as they finish (:meth:`collect`)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pending: dict[Future, _Sending] = {}
        self.claimed: set[str] = set()
        """The deliveries this flight claimed and did not give back: in ``runtime.holding``
        until :meth:`close`."""
        self.gone: set[str] = set()
        """Endpoints that answered ``410 Gone`` during this flight (see :func:`_send`)."""

    def close(self) -> None:
        """The job is over: its claims are recorded or spooled, or left to
        ``reconcile.recover_own_claims`` if it was cut short."""
        self.runtime.unhold(self.claimed)

    def start(self, request_ids: list[str]) -> dict[str, Result]:
        """Claims the deliveries in one statement and starts their POSTs. Returns the results
        known at once (not claimable, deferred, failed without sending, poison); the rest are
        pending until :meth:`collect` returns them."""
        runtime = self.runtime
        if not request_ids:
            return {}
        try:
            # One timestamp for every try, so a retried claim recognizes its own committed claims.
            claims = _db_write(store.claim_many)(
                runtime.engine, request_ids, runtime.worker_name, datetime.now(UTC)
            )
        except SQLAlchemyError as exc:
            log_line(
                logging.WARNING,
                "database unavailable at claim; jobs rescheduled",
                request_ids=len(request_ids),
                retry_in=CLAIM_RETRY_SECONDS,
                error=store.describe_error(exc),
            )
            return {rid: Retry(max=RETRY_FOREVER, interval=CLAIM_RETRY_SECONDS) for rid in request_ids}
        self.claimed.update(claims)
        runtime.hold(claims)
        results: dict[str, Result] = {}
        held = list(claims.values())
        try:
            unclaimed = [rid for rid in request_ids if rid not in claims]
            if unclaimed:
                results.update(self._not_claimed(unclaimed))
            while held:
                sending = self._prepare(held[0])
                claim = held.pop(0)
                if isinstance(sending, _Sending):
                    self.pending[runtime.senders.submit(_send, runtime, sending, self.gone)] = sending
                else:
                    results[claim.request_id] = sending
        except BaseException:
            self._give_back(held)  # a claim must never outlive the job that made it
            raise
        return results

    def _give_back(self, claims: list[store.Claim]) -> None:
        for claim in claims:
            try:
                store.release_claim(self.runtime.engine, claim.request_id, self.runtime.worker_name)
            except SQLAlchemyError:  # reconcile recovers it (a claim older than any job)
                continue
            self.claimed.discard(claim.request_id)  # as if never claimed: its job can go back
            self.runtime.unhold([claim.request_id])

    def _not_claimed(self, request_ids: list[str]) -> dict[str, Result]:
        existing = store.existing_deliveries(self.runtime.engine, request_ids)
        results: dict[str, Result] = {}
        for request_id in request_ids:
            if request_id in existing:
                results[request_id] = None  # delivered, failed, or held by another worker: nothing to do
            else:
                log_line(logging.ERROR, "poison job: no delivery row", request_id=request_id)
                results[request_id] = POISON
        return results

    def _prepare(self, claim: store.Claim) -> _Sending | Result:
        """What the POST needs, or the result when there is to be none now."""
        runtime = self.runtime
        settings = runtime.settings
        endpoint = settings.endpoint(claim.endpoint)
        if endpoint is None:
            _finish_without_sending(runtime, claim, f"endpoint {claim.endpoint!r} is no longer configured")
            return None
        if endpoint.name in runtime.disabled.get():
            store.release_claim(
                runtime.engine, claim.request_id, runtime.worker_name, fail_reason=health.DISABLED_REASON
            )
            log_line(
                logging.WARNING,
                "held back: endpoint disabled",
                request_id=claim.request_id,
                endpoint=endpoint.name,
            )
            return None
        rules = settings.delivery_for(endpoint)
        try:
            body, logged_body = payload.render(
                json.loads(claim.payload),
                retry=claim.attempt > 1,
                webhook_key=endpoint.key if endpoint.include_key_in_body else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            _finish_without_sending(runtime, claim, f"stored payload is unusable: {type(exc).__name__}")
            return None
        limited = limits.is_limited(endpoint)
        wait = limits.acquire(runtime.redis, endpoint, claim.request_id, rules.timeout + 60) if limited else 0
        if wait:
            store.release_claim(runtime.engine, claim.request_id, runtime.worker_name)
            return Retry(max=RETRY_FOREVER, interval=_deferral(wait))
        headers = delivery.build_headers(endpoint.key)  # signed on the sender thread, at send time
        return _Sending(claim, endpoint, rules, body, logged_body, headers, limited)

    def collect(self) -> dict[str, Result]:
        """Waits for at least one POST, records every one finished by then in one transaction,
        and returns their results."""
        if not self.pending:
            return {}
        done, _ = wait(list(self.pending), return_when=FIRST_COMPLETED)
        finished = []
        held_back = []
        for future in done:
            sending = self.pending.pop(future)
            outcome, now = future.result()
            if outcome is None:
                held_back.append(sending)
            else:
                finished.append((sending, outcome, now))
        entries = []
        decisions = []
        for sending, outcome, now in finished:
            claim = sending.claim
            decision = policy.decide(
                outcome,
                attempt=claim.attempt,
                attempt_limit=claim.attempt_limit,
                settings=sending.rules,
                now=now,
            )
            error = outcome.error
            if decision.exhausted:
                error = f"{error}; attempts exhausted" if error else "attempts exhausted"
            attempt = _attempt_record(
                claim,
                sending.endpoint.url,
                decision.outcome,
                now,
                http_status=outcome.http_status,
                error=error,
                response_body=outcome.response_body,
                duration_ms=outcome.duration_ms,
                next_attempt_at=decision.next_attempt_at,
                request_payload=sending.logged_body,
                request_headers={**sending.headers, "X-Webhook-Key": REDACTED_HEADER},
            )
            entries.append((attempt, None if decision.outcome != policy.FAILED else decision.reason))
            decisions.append((decision, error))
        if entries:
            record(self.runtime, entries, self.runtime.worker_name)  # first: these were sent
        results: dict[str, Result] = {s.claim.request_id: self._held_back(s) for s in held_back}
        for (sending, outcome, _now), (decision, error) in zip(finished, decisions, strict=True):
            results[sending.claim.request_id] = self._after(sending, outcome, decision, error)
        return results

    def _held_back(self, sending: _Sending) -> Result:
        """A delivery not sent because its endpoint answered 410 meanwhile: its claim is given
        back and its job comes back once every process's disabled cache has been re-read, when
        the check in :meth:`_prepare` fails it with ``endpoint_disabled`` (or sends it, if the
        endpoint was not disabled after all)."""
        runtime, claim = self.runtime, sending.claim
        log_line(
            logging.WARNING,
            "held back: endpoint answered 410",
            request_id=claim.request_id,
            endpoint=claim.endpoint,
        )
        _release_lease(runtime, sending)
        try:
            store.release_claim(runtime.engine, claim.request_id, runtime.worker_name)
        except SQLAlchemyError as exc:  # still in_flight: reconcile.recover_own_claims re-queues it
            log_line(logging.WARNING, "held-back claim not released", error=store.describe_error(exc))
        return Retry(max=RETRY_FOREVER, interval=HELD_BACK_SECONDS)

    def _after(
        self,
        sending: _Sending,
        outcome: delivery.DeliveryOutcome,
        decision: policy.RetryDecision,
        error: str | None,
    ) -> Result:
        """Once the attempt is recorded: the limit's lease back, metrics, the process log line."""
        runtime, claim = self.runtime, sending.claim
        _release_lease(runtime, sending)
        metrics.record_attempt(claim.event, claim.endpoint, decision.outcome, outcome.duration_ms / 1000)
        log_line(
            logging.INFO
            if decision.outcome != policy.FAILED and outcome.http_status and outcome.http_status < 300
            else logging.WARNING,
            "attempt",
            request_id=claim.request_id,
            event=claim.event,
            endpoint=claim.endpoint,
            attempt=claim.attempt,
            outcome=decision.outcome,
            http_status=outcome.http_status,
            duration_ms=outcome.duration_ms,
            next_attempt_in=decision.delay_seconds,
            error=error,
            worker=runtime.worker_name,
        )
        if decision.outcome == policy.FAILED:
            _check_health(runtime, sending.endpoint, outcome.http_status)
        if decision.outcome == policy.RETRY and decision.delay_seconds:
            return Retry(max=RETRY_FOREVER, interval=decision.delay_seconds + SCHEDULER_SLACK_SECONDS)
        return None

    def drain(self) -> dict[str, Result]:
        """Collects every pending POST."""
        results: dict[str, Result] = {}
        while self.pending:
            results.update(self.collect())
        return results


def _release_lease(runtime: Runtime, sending: _Sending) -> None:
    """Gives back the endpoint's concurrency slot taken for this delivery, if it has limits."""
    if not sending.limited:
        return
    try:
        limits.release(runtime.redis, sending.endpoint, sending.claim.request_id)
    except Exception as exc:  # noqa: BLE001 - the lease expires on its own
        log_line(logging.WARNING, "limit lease not released", error=f"{type(exc).__name__}: {exc}")


def _deferral(wait: float) -> int:
    """RQ's interval for a delivery that must wait ``wait`` s for its endpoint's limits: at least
    that long (RQ's whole seconds can make a wait up to one short), and a second at the least."""
    return 1 if wait <= 1 else math.ceil(wait) + SCHEDULER_SLACK_SECONDS


def _finish_without_sending(runtime: Runtime, claim: store.Claim, error: str) -> None:
    attempt = _attempt_record(claim, claim.url, policy.FAILED, datetime.now(UTC), error=error, duration_ms=0)
    record(runtime, [(attempt, error)], runtime.worker_name)
    metrics.record_attempt(claim.event, claim.endpoint, policy.FAILED, None)
    log_line(
        logging.ERROR,
        "failed without sending",
        request_id=claim.request_id,
        event=claim.event,
        endpoint=claim.endpoint,
        attempt=claim.attempt,
        outcome="failed",
        error=error,
    )


def _check_health(runtime: Runtime, endpoint: Endpoint, http_status: int | None) -> None:
    try:
        if health.after_failure(runtime.engine, endpoint, http_status):
            runtime.disabled.invalidate()
    except SQLAlchemyError as exc:  # the attempt is recorded; the check runs again at the next failure
        log_line(
            logging.WARNING,
            "endpoint health check failed",
            endpoint=endpoint.name,
            error=store.describe_error(exc),
        )


def _returned(request_id: str, result: Result) -> Retry | None:
    if result is POISON:
        raise PoisonJob(f"no delivery row for request_id {request_id}; the job cannot be delivered")
    return result  # type: ignore[return-value]


def deliver_one(runtime: Runtime, request_id: str) -> Retry | None:
    """One delivery's attempt, without taking more from the queue. Returns a Retry to schedule,
    or None.

    Raises:
        PoisonJob: no delivery row has this request_id.
    """
    flight = Flight(runtime)
    try:
        results = flight.start([request_id])
        results.update(flight.drain())
    finally:
        flight.close()
    return _returned(request_id, results[request_id])


def deliver(request_id: str) -> Retry | None:
    """The job RQ runs. Returns ``rq.Retry`` to schedule the next attempt, or None when done.

    While it runs it takes more queued jobs from the head of the queue and delivers them too (a
    batch): RQ's own bookkeeping costs more than a delivery does, so a backlog drains several
    times faster. Each taken job leaves the queue atomically, marked started by this worker, so
    no other worker gets it; each keeps its own claim, attempt row and retry (its own scheduled
    job). A worker killed meanwhile leaves its taken jobs and claims to reconcile, which
    recovers them like any other dead worker's. The batch stops taking when the queue is empty,
    after :data:`BATCH_MAX` jobs, when the RQ job's time runs short, or when the worker is asked
    to stop; it always finishes and records what it started.

    Raises:
        PoisonJob: no delivery row has this request_id (failed in RQ, never retried).
    """
    runtime = get_runtime()
    started = time.monotonic()
    threads = runtime.settings.worker_threads
    capacity = threads * queue.SENDS_PER_THREAD  # claimed and not yet recorded, at most
    # Stop taking while the sends in hand can still finish, and be recorded, inside RQ's limit:
    # this job's own (set when it was queued, before any change of configuration), else today's.
    job = get_current_job()
    limit = job.timeout if job is not None and job.timeout else queue.job_timeout(runtime.settings)
    budget = limit - 60 - queue.SENDS_PER_THREAD * queue.slowest_attempt(runtime.settings)
    flight = Flight(runtime)
    taken: set[str] = set()  # members taken and not settled yet
    finished: list[str] = []  # settled members whose job record goes with the next take
    results: dict[str, Result] = {}
    handled = 0
    queue_has_more = True
    ids = [request_id]
    try:
        while True:
            free = capacity - len(flight.pending) - len(ids)
            can_take = (
                queue_has_more
                and handled < BATCH_MAX
                and not runtime.stop_requested
                and time.monotonic() - started < budget
            )
            # Take a group at a time (a thread's worth of room, or all idle), so that claims and
            # records are one statement per group while the threads keep sending.
            if can_take and free > 0 and (free >= threads or not flight.pending):
                wanted = min(free, BATCH_MAX - handled)
                members = queue.take(runtime.queue, runtime.worker_name, wanted, finished)
                finished.clear()
                handled += len(members)
                taken.update(members)
                queue_has_more = len(members) == wanted
                ids += members
            results.update(flight.start(ids))
            ids = []
            _settle(runtime, taken, results, finished)
            if not flight.pending:
                if can_take and queue_has_more:
                    continue
                break
            results.update(flight.collect())
            _settle(runtime, taken, results, finished)
    except BaseException:
        _wind_down(runtime, flight, taken, results, finished)
        raise
    finally:
        flight.close()
        if finished:
            try:
                queue.take(runtime.queue, runtime.worker_name, 0, finished)
            except Exception as exc:  # noqa: BLE001 - a finished job's leftover record is harmless
                log_line(logging.WARNING, "finished job records not dropped", error=f"{type(exc).__name__}")
    return _returned(request_id, results[request_id])


def _wind_down(
    runtime: Runtime, flight: Flight, taken: set[str], results: dict[str, Result], finished: list[str]
) -> None:
    """After an error in a batch: records what was sent, and gives every member a way back."""
    try:
        results.update(flight.drain())  # what was sent is recorded whatever else went wrong
        _settle(runtime, taken, results, finished)
        for member in list(taken):
            if member not in flight.claimed:  # never claimed: queued again, not lost
                queue.put_back(runtime.queue, member)
                taken.discard(member)
        # A member claimed but not settled keeps its job record (started by this worker) and its
        # row: reconcile re-queues it from the row, at its next_attempt_at (a stranded job), or
        # recovers its claim if it was never recorded. Put back now, it could be sent too early.
    except Exception as exc:  # noqa: BLE001 - Redis away: reconcile re-queues from the database
        log_line(logging.WARNING, "batch wind-down incomplete", error=f"{type(exc).__name__}: {exc}")


def _settle(runtime: Runtime, taken: set[str], results: dict[str, Result], finished: list[str]) -> None:
    """Gives each member with a result its next step in Redis: its retry scheduled, or its job
    record dropped with the next take."""
    for member in [m for m in taken if m in results]:
        taken.discard(member)
        result = results[member]
        if isinstance(result, Retry):
            queue.schedule_taken(runtime.queue, member, result.intervals[0])
        else:
            finished.append(member)
