"""A flight: the deliveries one RQ job has under way, from claim to record.

claim (a group in one statement) -> the gates (:mod:`dispatcher.policy.gates`; a paused endpoint
and an open breaker through :mod:`.breaking`) -> POST on the runtime's sender threads
(:mod:`dispatcher.sending.attempt`) -> decide (:mod:`dispatcher.policy.retry`) -> record the
group (:mod:`.recording`) -> the breaker told the result, the process log line, metrics and
endpoint health. What follows for each delivery is its
:data:`~dispatcher.worker.results.Result`: an ``rq.Retry`` to schedule, None when it is done, or
``POISON``.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy.exc import SQLAlchemyError

from .. import store
from ..config import DeliverySettings, Endpoint
from ..contract import wrapper
from ..logs import log_line
from ..policy import breaker as breaker_policy
from ..policy import gates, health
from ..policy import retry as policy
from ..runtime import Runtime
from ..sending import attempt, limits
from ..vocabulary import AttemptOutcome, Reason
from . import metrics, tracing
from .breaking import Holds
from .ordering import not_claimed
from .posting import Sending, send, stored_headers
from .recording import Entry, attempt_record, db_write, record
from .results import Result, retry_in

CLAIM_RETRY_SECONDS = 15
"""When the database refuses the claim, the job is rescheduled this long later."""


@dataclass(frozen=True)
class Finished:
    """A POST that finished, and what the policy decided."""

    sending: Sending
    outcome: policy.DeliveryOutcome
    decision: policy.RetryDecision
    error: str | None
    at: datetime

    def entry(self) -> Entry:
        """The attempt row, and the reason its delivery failed (if it did)."""
        decision, outcome = self.decision, self.outcome
        row = attempt_record(
            self.sending.claim,
            self.sending.endpoint.url,
            decision.outcome,
            self.at,
            http_status=outcome.http_status,
            failure=outcome.failure,
            error=self.error,  # the partner's words too: sealed, never in the process log
            response_body=outcome.response_body,
            duration_ms=outcome.duration_ms,
            next_attempt_at=decision.next_attempt_at,
            request_payload=self.sending.logged_body,
            request_headers=stored_headers(self.sending),
        )
        return row, decision.reason if decision.outcome == AttemptOutcome.FAILED else None


class Flight:
    """The deliveries one RQ job has under way: claimed a group at a time (:meth:`start`), POSTed
    on the runtime's sender threads, recorded as they finish (:meth:`collect`)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pending: dict[Future[Any], Sending] = {}
        self.claimed: set[str] = set()
        """The deliveries this flight claimed and did not give back: in ``runtime.holding``
        until :meth:`close`."""
        self.gone: set[str] = set()
        """Endpoints that answered ``410 Gone`` during this flight (see :func:`send`)."""
        self.contexts: dict[str, tuple[str | None, str | None]] = {}
        """The trace contexts of the group being started (while the worker traces)."""
        self.holds = Holds(runtime)
        """The endpoints' pause and breakers, and the probes this flight holds."""

    def close(self) -> None:
        """The job is over: its claims are recorded or spooled, or left to
        ``reconcile.recover_own_claims`` if it was cut short."""
        self.runtime.unhold(self.claimed)

    def start(
        self, request_ids: list[str], known: dict[str, tuple[str | None, str | None]] | None = None
    ) -> dict[str, Result]:
        """Claims the deliveries in one statement and starts their POSTs. Returns the results
        known at once (not claimable, deferred, failed without sending, poison); the rest are
        pending until :meth:`collect` returns them. ``known``: trace contexts already read (with
        the take), so only the others are read."""
        runtime = self.runtime
        if not request_ids:
            return {}
        try:
            # One timestamp for every try, so a retried claim recognizes its own committed claims.
            claims = db_write(store.claim_many)(
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
            return {rid: retry_in(CLAIM_RETRY_SECONDS) for rid in request_ids}
        self.claimed.update(claims)
        runtime.hold(claims)
        self.holds.begin_group()
        results: dict[str, Result] = {}
        held = list(claims.values())
        try:
            contexts = self.contexts = tracing.contexts(runtime, list(claims), known or {})
            unclaimed = [rid for rid in request_ids if rid not in claims]
            if unclaimed:
                results.update(not_claimed(runtime, unclaimed))
            while held:
                sending = self._prepare(held[0])
                claim = held.pop(0)
                if isinstance(sending, Sending):
                    sending.dispatch_trace, sending.previous_trace = contexts.get(
                        claim.request_id, (None, None)
                    )
                    self.pending[runtime.senders.submit(send, runtime, sending, self.gone)] = sending
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

    def _prepare(self, claim: store.Claim) -> Sending | Result:
        """What the POST needs, or the result when a gate is closed."""
        runtime = self.runtime
        endpoint = runtime.settings.endpoint(claim.endpoint)
        if endpoint is None and runtime.refresh_endpoints(force=True):  # added a moment ago, not seen yet
            endpoint = runtime.settings.endpoint(claim.endpoint)
        if endpoint is None and claim.endpoint in runtime.unusable_endpoints:  # stored, not usable here
            return self._closed(
                claim, gates.GateVerdict(gates.Gate.DEFER, retry_in=gates.UNUSABLE_HERE_SECONDS)
            )
        verdict = gates.before_render(claim.endpoint, endpoint is not None, runtime.disabled.get())
        if verdict.gate is gates.Gate.SEND:
            verdict = self.holds.paused(claim.endpoint)
        if endpoint is None or verdict.gate is not gates.Gate.SEND:
            return self._closed(claim, verdict)
        rules = runtime.settings.delivery_for(endpoint)
        if (closed := gates.stored_payload(claim.payload)) is not None:  # erased, or its key is gone
            return self._closed(claim, closed)
        try:
            body, logged_body = wrapper.render(
                json.loads(cast(str, claim.payload)),  # not None: stored_payload let it through
                retry=claim.attempt > 1,
                webhook_key=endpoint.key if endpoint.include_key_in_body else None,
            )
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            return self._closed(claim, gates.unusable_payload(exc))
        limited = limits.is_limited(endpoint)
        verdict = self._let_through(claim, endpoint, rules, limited)
        if verdict.gate is not gates.Gate.SEND:
            return self._closed(claim, verdict)
        headers = attempt.endpoint_headers(
            endpoint
        )  # signed (and an OAuth2 token added) on the sender thread
        return Sending(claim, endpoint, rules, body, logged_body, headers, limited)

    def _let_through(
        self, claim: store.Claim, endpoint: Endpoint, rules: DeliverySettings, limited: bool
    ) -> gates.GateVerdict:
        """The breaker's gate, then the limits' (a probe held back by a limit gives its turn back)."""
        verdict = self.holds.admit(endpoint, rules, claim.request_id)
        if verdict.gate is not gates.Gate.SEND or not limited:
            return verdict
        wait_seconds = limits.acquire(self.runtime.redis, endpoint, claim.request_id, rules.timeout + 60)
        verdict = gates.after_limits(wait_seconds)
        if verdict.gate is not gates.Gate.SEND:
            self.holds.release(endpoint.name, claim.request_id)
        return verdict

    def _closed(self, claim: store.Claim, verdict: gates.GateVerdict) -> Result:
        """Carries out a closed gate's verdict before any POST."""
        runtime = self.runtime
        if verdict.gate is gates.Gate.FAIL:
            _finish_without_sending(runtime, claim, verdict.error or "not sendable")
            tracing.failed_unsent(claim, self.contexts.get(claim.request_id))
            return None
        if verdict.gate is gates.Gate.DISABLED:
            store.release_claim(
                runtime.engine, claim.request_id, runtime.worker_name, fail_reason=Reason.ENDPOINT_DISABLED
            )
            log_line(
                logging.WARNING,
                "held back: endpoint disabled",
                request_id=claim.request_id,
                endpoint=claim.endpoint,
            )
            return None
        store.release_claim(runtime.engine, claim.request_id, runtime.worker_name)  # no attempt used
        if verdict.gate in (gates.Gate.PAUSED, gates.Gate.BREAKER_OPEN):
            log_line(
                logging.INFO,
                f"held back: {'endpoint paused' if verdict.gate is gates.Gate.PAUSED else 'breaker open'}",
                request_id=claim.request_id,
                endpoint=claim.endpoint,
                retry_in=verdict.retry_in,
            )
        return retry_in(verdict.retry_in or 1)

    def collect(self, timeout: float | None = None) -> dict[str, Result]:
        """Waits for at least one POST (at most ``timeout`` seconds), records every one finished
        by then in one transaction, and returns their results."""
        if not self.pending:
            return {}
        done, _ = wait(list(self.pending), timeout=timeout, return_when=FIRST_COMPLETED)
        finished: list[Finished] = []
        held_back: list[Sending] = []
        for future in done:
            sending = self.pending.pop(future)
            outcome, now = future.result()
            if outcome is None:
                held_back.append(sending)
                continue
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
            finished.append(Finished(sending, outcome, decision, error, now))
        if finished:
            record(
                self.runtime, [f.entry() for f in finished], self.runtime.worker_name
            )  # first: these were sent

        results: dict[str, Result] = {s.claim.request_id: self._held_back(s) for s in held_back}
        for f in finished:
            results[f.sending.claim.request_id] = self._after(f)
        tracing.end_attempts(self.runtime, [(f.sending, f.decision.outcome) for f in finished])
        self.holds.count()  # their results in the breakers, one round trip per endpoint
        return results

    def _held_back(self, sending: Sending) -> Result:
        """A delivery not sent because its endpoint answered 410 meanwhile: its claim is given
        back and its job comes back once every process's disabled cache has been re-read, when
        the gates fail it with ``endpoint_disabled`` (or send it, if the endpoint was not
        disabled after all)."""
        runtime, claim = self.runtime, sending.claim
        log_line(
            logging.WARNING,
            "held back: endpoint answered 410",
            request_id=claim.request_id,
            endpoint=claim.endpoint,
        )
        _release_lease(runtime, sending)
        self.holds.release(claim.endpoint, claim.request_id)
        try:
            store.release_claim(runtime.engine, claim.request_id, runtime.worker_name)
        except SQLAlchemyError as exc:  # still in_flight: reconcile.recover_own_claims re-queues it
            log_line(logging.WARNING, "held-back claim not released", error=store.describe_error(exc))
        return retry_in(gates.HELD_BACK_SECONDS)

    def _after(self, finished: Finished) -> Result:
        """Once the attempt is recorded: the limit's lease back, metrics, the process log line
        (the status code and the failure kind: never the error, which holds the partner's words)."""
        sending, outcome, decision = finished.sending, finished.outcome, finished.decision
        runtime, claim = self.runtime, sending.claim
        _release_lease(runtime, sending)
        result = breaker_policy.sample(outcome.http_status, outcome.failure)
        self.holds.after_attempt(sending.endpoint, sending.rules, claim.request_id, result)
        metrics.record_attempt(claim.event, claim.endpoint, decision.outcome, outcome.duration_ms / 1000)
        if decision.outcome == AttemptOutcome.DELIVERED:
            metrics.delivered(claim.event, claim.endpoint, claim.dispatched_at)
        sent_fine = (
            decision.outcome != AttemptOutcome.FAILED and outcome.http_status and outcome.http_status < 300
        )
        _log_attempt(
            logging.INFO if sent_fine else logging.WARNING,
            "attempt",
            claim,
            decision.outcome,
            http_status=outcome.http_status,
            duration_ms=outcome.duration_ms,
            next_attempt_in=decision.delay_seconds,
            failure=outcome.failure,
            worker=runtime.worker_name,
        )
        if decision.outcome == AttemptOutcome.FAILED:
            _check_health(runtime, sending.endpoint, outcome.http_status)
        if decision.outcome == AttemptOutcome.RETRY_SCHEDULED and decision.delay_seconds:
            return retry_in(gates.retry_interval(decision.delay_seconds))
        return None

    def drain(self) -> dict[str, Result]:
        """Collects every pending POST."""
        results: dict[str, Result] = {}
        while self.pending:
            results.update(self.collect())
        return results


def _release_lease(runtime: Runtime, sending: Sending) -> None:
    """Gives back the endpoint's concurrency slot taken for this delivery, if it has limits."""
    if not sending.limited:
        return
    try:
        limits.release(runtime.redis, sending.endpoint, sending.claim.request_id)
    except Exception as exc:  # noqa: BLE001 - the lease expires on its own
        log_line(logging.WARNING, "limit lease not released", error=f"{type(exc).__name__}: {exc}")


def _finish_without_sending(runtime: Runtime, claim: store.Claim, error: str) -> None:
    failed = attempt_record(
        claim, claim.url, AttemptOutcome.FAILED, datetime.now(UTC), error=error, duration_ms=0
    )
    record(runtime, [(failed, error)], runtime.worker_name)
    metrics.record_attempt(claim.event, claim.endpoint, AttemptOutcome.FAILED, None)
    _log_attempt(logging.ERROR, "failed without sending", claim, AttemptOutcome.FAILED, error=error)


def _log_attempt(
    level: int, message: str, claim: store.Claim, outcome: AttemptOutcome, **fields: object
) -> None:
    """The process log line of one attempt (or of a failure without one): the delivery, its
    attempt and outcome first, then ``fields``."""
    log_line(
        level,
        message,
        request_id=claim.request_id,
        event=claim.event,
        endpoint=claim.endpoint,
        attempt=claim.attempt,
        outcome=outcome,
        **fields,
    )


def _check_health(runtime: Runtime, endpoint: Endpoint, http_status: int | None) -> None:
    """Disables the endpoint when this final failure calls for it (:mod:`dispatcher.policy.health`)."""
    rule = endpoint.disable_after
    try:
        failures = None
        if health.counts_failures(http_status, rule):
            assert rule is not None
            since = datetime.now(UTC) - timedelta(seconds=rule.window_seconds)
            failures = store.failures_without_success(runtime.engine, endpoint.name, since)
        reason = health.disable_reason(http_status, rule, failures)
        if reason and store.disable(runtime.engine, endpoint.name, reason):
            runtime.disabled.invalidate()
    except SQLAlchemyError as exc:  # the attempt is recorded; the check runs again at the next failure
        log_line(
            logging.WARNING,
            "endpoint health check failed",
            endpoint=endpoint.name,
            error=store.describe_error(exc),
        )
