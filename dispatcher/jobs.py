"""The RQ job: one attempt of one delivery, from claim to record.

claim (database) -> POST (:mod:`delivery`) -> decide (:mod:`retry`) -> record (database, with
retries, else the local spool) -> return ``rq.Retry`` so RQ's scheduler runs the next attempt.
A worker never sleeps through a backoff.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from rq import Retry
from sqlalchemy.exc import SQLAlchemyError
from tenacity import retry as tenacity_retry
from tenacity import retry_if_exception_type, stop_after_delay, wait_exponential

from . import delivery, health, limits, metrics, payload, queue, signing, spool, store
from . import retry as policy
from .config import Endpoint
from .errors import PoisonJob
from .logs import log_line
from .runtime import Runtime, get_runtime

REDACTED_HEADER = "[redacted]"
CLAIM_RETRY_SECONDS = 15
"""When the database refuses the claim, the job is rescheduled this long later."""
RETRY_FOREVER = 10**9
"""RQ's own retry counter is never the budget: the delivery table is."""
BATCH_MAX = 50
"""Most queued jobs one RQ job takes after its own (see :func:`deliver_batch`)."""
LIMIT_DEFER_SECONDS = 1
"""A delivery whose endpoint is at its concurrency or rate limit comes back this much later."""
SCHEDULER_SLACK_SECONDS = 1
"""RQ computes a retry's time from its own clock after the job returns and its scheduled
registry truncates that time to whole seconds, which can make a wait up to a second short.
One more second keeps every wait at least as long as the policy's ``next_attempt_at``."""


def _db_write(fn):
    return tenacity_retry(
        retry=retry_if_exception_type(SQLAlchemyError),
        stop=stop_after_delay(20),
        wait=wait_exponential(multiplier=0.2, max=5),
        reraise=True,
    )(fn)


def record(
    runtime: Runtime, attempt: store.AttemptRecord, worker: str | None, reason: str | None = None
) -> None:
    """Writes the attempt, retrying; if the database still refuses, holds it in the spool."""
    try:
        _db_write(store.record_attempt)(runtime.engine, attempt, worker, reason)
    except SQLAlchemyError as exc:
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
    try:
        written = spool.flush(
            runtime.spool_dir,
            lambda rec, worker, reason: store.record_attempt(runtime.engine, rec, worker, reason),
        )
    except SQLAlchemyError:
        return 0
    if written:
        log_line(logging.WARNING, "spooled attempt records written to the database", count=written)
    return written


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


def _finish_without_sending(runtime: Runtime, claim: store.Claim, error: str) -> None:
    attempt = _attempt_record(claim, claim.url, policy.FAILED, datetime.now(UTC), error=error, duration_ms=0)
    record(runtime, attempt, runtime.worker_name, reason=error)
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


def attempt_delivery(runtime: Runtime, claim: store.Claim) -> policy.RetryDecision:
    """POSTs the claimed delivery once, records the attempt, and returns the decision."""
    settings = runtime.settings
    endpoint = settings.endpoint(claim.endpoint)
    if endpoint is None:
        error = f"endpoint {claim.endpoint!r} is no longer configured"
        _finish_without_sending(runtime, claim, error)
        return policy.RetryDecision(policy.FAILED, error)
    rules = settings.delivery_for(endpoint)
    try:
        stored = json.loads(claim.payload)
        body, logged_body = payload.render(
            stored,
            retry=claim.attempt > 1,
            webhook_key=endpoint.key if endpoint.include_key_in_body else None,
        )
    except (ValueError, KeyError, TypeError) as exc:
        error = f"stored payload is unusable: {type(exc).__name__}"
        _finish_without_sending(runtime, claim, error)
        return policy.RetryDecision(policy.FAILED, error)

    headers = delivery.build_headers(endpoint.key)
    if endpoint.signing_secrets:
        headers.update(
            signing.signature_headers(claim.request_id, int(time.time()), body, endpoint.signing_keys())
        )
    outcome = delivery.post(
        runtime.http,
        endpoint.url,
        body,
        headers,
        timeout=rules.timeout,
        connect_timeout=rules.connect_timeout,
        response_body_limit=rules.response_body_limit,
        verify=rules.verify,
    )
    now = datetime.now(UTC)
    decision = policy.decide(
        outcome, attempt=claim.attempt, attempt_limit=claim.attempt_limit, settings=rules, now=now
    )
    error = outcome.error
    if decision.exhausted:
        error = f"{error}; attempts exhausted" if error else "attempts exhausted"
    attempt = _attempt_record(
        claim,
        endpoint.url,
        decision.outcome,
        now,
        http_status=outcome.http_status,
        error=error,
        response_body=outcome.response_body,
        duration_ms=outcome.duration_ms,
        next_attempt_at=decision.next_attempt_at,
        request_payload=logged_body,
        request_headers={**headers, "X-Webhook-Key": REDACTED_HEADER},
    )
    record(
        runtime,
        attempt,
        runtime.worker_name,
        reason=None if decision.outcome != policy.FAILED else decision.reason,
    )
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
    )
    if decision.outcome == policy.FAILED:
        _check_health(runtime, endpoint, outcome.http_status)
    return decision


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


def deliver(request_id: str) -> Retry | None:
    """The job RQ runs. Returns ``rq.Retry`` to schedule the next attempt, or None when done.

    After its own delivery it takes more queued jobs one at a time and delivers them in the same
    RQ job (:func:`deliver_batch`): RQ's own bookkeeping costs more than a delivery does, so a
    backlog drains several times faster. Each still has its own claim, attempt row and retry.

    Raises:
        PoisonJob: no delivery row has this request_id (failed in RQ, never retried).
    """
    runtime = get_runtime()
    started = time.monotonic()
    result = deliver_one(runtime, request_id)
    deliver_batch(runtime, started)
    return result


def deliver_batch(runtime: Runtime, started: float) -> int:
    """Delivers queued jobs taken from the queue's head, while the RQ job's time allows.

    Each is taken atomically (it leaves the queue, marked started by this worker), so no other
    worker gets it, and at most one taken job is ever unfinished: a worker killed meanwhile
    leaves one delivery that reconcile recovers like any other. Returns how many it delivered.
    """
    settings = runtime.settings
    slowest = max(
        [
            settings.delivery_for(e).timeout + settings.delivery_for(e).connect_timeout
            for e in settings.endpoints
        ]
        or [settings.delivery.timeout + settings.delivery.connect_timeout]
    )
    budget = queue.job_timeout(settings) - 60  # room left for a slow database write
    handled = 0
    finished: str | None = None  # its record is dropped by the next take, in the same round trip
    try:
        while handled < BATCH_MAX and not runtime.stop_requested:
            if time.monotonic() - started + slowest > budget:
                break
            member = queue.take_next(runtime.queue, runtime.worker_name, finished)
            finished = None
            if member is None:
                break
            handled += 1
            try:
                result = deliver_one(runtime, member)
            except PoisonJob:
                finished = member
                continue
            except Exception:
                queue.put_back(runtime.queue, member)  # reconcile-safe: queued again, not lost
                raise
            if isinstance(result, Retry):
                queue.schedule_taken(runtime.queue, member, result.intervals[0])
            else:
                finished = member
    finally:
        if finished is not None:
            queue.drop_taken(runtime.queue, finished)
    return handled


def deliver_one(runtime: Runtime, request_id: str) -> Retry | None:
    """One delivery's attempt: claim, limits, POST, record. Returns a Retry to schedule, or None."""
    try:
        # One timestamp for every try, so a retried claim recognizes its own committed claim.
        claim = _db_write(store.claim)(runtime.engine, request_id, runtime.worker_name, datetime.now(UTC))
    except SQLAlchemyError as exc:
        log_line(
            logging.WARNING,
            "database unavailable at claim; job rescheduled",
            request_id=request_id,
            retry_in=CLAIM_RETRY_SECONDS,
            error=store.describe_error(exc),
        )
        return Retry(max=RETRY_FOREVER, interval=CLAIM_RETRY_SECONDS)
    if claim is None:
        if not store.delivery_exists(runtime.engine, request_id):
            log_line(logging.ERROR, "poison job: no delivery row", request_id=request_id)
            raise PoisonJob(f"no delivery row for request_id {request_id}; the job cannot be delivered")
        return None  # delivered, failed, or held by another worker right now: nothing to do
    endpoint = runtime.settings.endpoint(claim.endpoint)
    if endpoint is not None and endpoint.name in runtime.disabled.get():
        store.release_claim(
            runtime.engine, request_id, runtime.worker_name, fail_reason=health.DISABLED_REASON
        )
        log_line(
            logging.WARNING, "held back: endpoint disabled", request_id=request_id, endpoint=endpoint.name
        )
        return None
    limited = endpoint is not None and limits.is_limited(endpoint)
    if limited:
        lease = runtime.settings.delivery_for(endpoint).timeout + 60
        if not limits.acquire(runtime.redis, endpoint, request_id, lease):
            store.release_claim(runtime.engine, request_id, runtime.worker_name)
            return Retry(max=RETRY_FOREVER, interval=LIMIT_DEFER_SECONDS)
    try:
        decision = attempt_delivery(runtime, claim)
    finally:
        if limited:
            limits.release(runtime.redis, endpoint, request_id)
    if decision.outcome == policy.RETRY and decision.delay_seconds:
        return Retry(max=RETRY_FOREVER, interval=decision.delay_seconds + SCHEDULER_SLACK_SECONDS)
    return None
