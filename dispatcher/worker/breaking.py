"""What holds an endpoint's deliveries back without using an attempt, on the worker's side:
the endpoint being paused, and its circuit breaker (:mod:`dispatcher.sending.breaker`, its
decisions :mod:`dispatcher.policy.breaker`'s).

A flight asks :class:`Holds` before each POST -- is the endpoint paused, does its breaker let
this delivery go -- and tells it every attempt's result afterwards: a result is counted in the
breaker's window (which may open it), a probe's result closes or reopens it. The process that
wins an opening raises ``endpoint.breaker_opened``; the one whose probe closes it raises
``endpoint.recovered``. When Redis does not answer, the breaker is taken as closed (the
delivery is sent, never lost) and the process log says so once, until Redis answers again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial

import redis
from sqlalchemy.exc import SQLAlchemyError

from .. import store
from ..config import BreakerSettings, DeliverySettings, Endpoint
from ..logs import log_line
from ..policy import breaker as policy
from ..policy import gates
from ..runtime import Runtime
from ..sending import breaker
from ..store import alerts
from ..times import format_utc
from ..vocabulary import AlertKind
from .recording import db_write

_outage_lock = threading.Lock()
_outage = False
"""Whether the last breaker call of this process found Redis away (logged once per outage)."""


def _unreachable(exc: redis.RedisError) -> None:
    global _outage
    with _outage_lock:
        first, _outage = not _outage, True
    if first:
        log_line(
            logging.WARNING,
            "breaker state unreachable; sending as if closed",
            error=f"{type(exc).__name__}: {exc}",
        )


def _reachable() -> None:
    global _outage
    with _outage_lock:
        was, _outage = _outage, False
    if was:
        log_line(logging.INFO, "breaker state reachable again")


class Holds:
    """One flight's dealings with its endpoints' pause and breakers: the probes it holds, and
    whether it has read the paused endpoints afresh."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.probes: set[str] = set()
        """The deliveries of this flight that hold their breaker's probe turn."""
        self.paused_read = False
        self.told: dict[str, policy.Admit] = {}
        """What each endpoint's breaker said to the group being claimed (go, or wait): the
        group's other deliveries to it are told the same without asking Redis again."""
        self.results: dict[str, tuple[Endpoint, BreakerSettings, int, int]] = {}
        """Attempts recorded and not yet counted in their breakers: per endpoint, its settings,
        the attempts and the retryable failures (counted together by :meth:`count`)."""

    def begin_group(self) -> None:
        """A new group is being claimed: each breaker is asked afresh (once per endpoint)."""
        self.told.clear()

    def paused(self, endpoint: str) -> gates.GateVerdict:
        """The pause gate. The paused endpoints are cached for a few seconds; a delivery found
        paused makes the flight read them afresh once, so a delivery woken by a resume is not
        held back for another :data:`~dispatcher.policy.gates.PAUSED_RECHECK_SECONDS` by a
        cache older than the resume."""
        cache = self.runtime.disabled
        verdict = gates.not_paused(endpoint, cache.paused())
        if verdict.gate is gates.Gate.SEND or self.paused_read:
            return verdict
        self.paused_read = True
        cache.invalidate()
        return gates.not_paused(endpoint, cache.paused())

    def admit(self, endpoint: Endpoint, rules: DeliverySettings, request_id: str) -> gates.GateVerdict:
        """The breaker's gate for one delivery: send it (closed, or it is the probe), or give it
        back until the probe time."""
        if rules.breaker is None:
            return gates.OPEN
        known = self.told.get(endpoint.name)
        if known is not None:
            return gates.after_breaker(known.wait_seconds)
        turn = policy.probe_seconds(rules.timeout, rules.connect_timeout)
        try:
            decision = breaker.admit(self.runtime.redis, endpoint.name, request_id, turn)
        except redis.RedisError as exc:
            _unreachable(exc)
            return gates.OPEN
        _reachable()
        if decision.admission is not policy.Admission.PROBE:
            self.told[endpoint.name] = decision  # closed or open: the same for the group's others
        else:
            self.probes.add(request_id)
            log_line(logging.INFO, "breaker probe", endpoint=endpoint.name, request_id=request_id)
        return gates.after_breaker(decision.wait_seconds)

    def release(self, endpoint: str, request_id: str) -> None:
        """A delivery that was let through is not sent after all (a later gate held it back):
        the probe's turn it holds, if any, goes back for another delivery."""
        if request_id not in self.probes:
            return
        self.probes.discard(request_id)
        self.told.pop(endpoint, None)  # the turn is free again: the next delivery asks
        try:
            breaker.release_probe(self.runtime.redis, endpoint, request_id)
        except redis.RedisError as exc:  # the turn ends on its own
            _unreachable(exc)

    def after_attempt(
        self, endpoint: Endpoint, rules: DeliverySettings, request_id: str, result: policy.Sample
    ) -> None:
        """Tells the breaker an attempt's result, once it is recorded: a probe's closes or
        reopens it at once; another's is kept to be counted with the attempts recorded with it
        (:meth:`count`). A change this process made is logged and alerted."""
        settings = rules.breaker
        probe = request_id in self.probes
        self.probes.discard(request_id)
        if settings is None or (not probe and result is policy.Sample.NOTHING):
            return
        if not probe:
            _, _, attempts, failures = self.results.get(endpoint.name, (endpoint, settings, 0, 0))
            failed = int(result is policy.Sample.FAILED)
            self.results[endpoint.name] = (endpoint, settings, attempts + 1, failures + failed)
            return
        self._tell(endpoint, settings, partial(breaker.settle_probe, endpoint=endpoint.name,
                   settings=settings, request_id=request_id, result=result))  # fmt: skip

    def count(self) -> None:
        """Counts the attempts kept since the last count, one round trip per endpoint; an
        opening this process made is logged and alerted."""
        kept, self.results = self.results, {}
        for name, (endpoint, settings, attempts, failures) in kept.items():
            self._tell(endpoint, settings, partial(breaker.record_many, endpoint=name, settings=settings,
                       attempts=attempts, failures=failures))  # fmt: skip

    def _tell(
        self,
        endpoint: Endpoint,
        settings: BreakerSettings,
        call: Callable[..., breaker.Change | None],
    ) -> None:
        try:
            change = call(client=self.runtime.redis)
        except redis.RedisError as exc:
            _unreachable(exc)
            return
        _reachable()
        if change is not None:
            self.told.pop(endpoint.name, None)
            announce(self.runtime, endpoint.name, settings.window_seconds, change)


def _stamp(change: breaker.Change) -> str:
    moment = change.since or change.at
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def announce(runtime: Runtime, endpoint: str, window_seconds: int, change: breaker.Change) -> None:
    """The process log line of a breaker change this process made, and its alert: an opening
    from closed raises ``endpoint.breaker_opened``, a closing ``endpoint.recovered`` (a failed
    probe only logs: the breaker was open already). Each occurrence is named by the endpoint
    and the opening's time, so it is raised once."""
    shown_until = format_utc(change.open_until) if change.open_until else None
    if change.move is breaker.Move.REOPENED:
        log_line(logging.WARNING, "breaker probe failed; open again", endpoint=endpoint, until=shown_until)
        return
    if change.move is breaker.Move.OPENED:
        kind = AlertKind.ENDPOINT_BREAKER_OPENED
        detail = (
            f"endpoint {endpoint}: {change.failures} of {change.attempts} attempts in {window_seconds}s "
            f"failed; its deliveries wait, no attempt used, until {shown_until}"
        )
        log_line(
            logging.WARNING,
            "breaker opened",
            endpoint=endpoint,
            attempts=change.attempts,
            failures=change.failures,
            until=shown_until,
        )
        occurrence = f"{kind}:{endpoint}:{_stamp(change)}"
    else:
        kind = AlertKind.ENDPOINT_RECOVERED
        detail = f"endpoint {endpoint}: a probe was answered; its breaker closed"
        log_line(logging.WARNING, "breaker closed", endpoint=endpoint)
        occurrence = f"{kind}:{endpoint}:breaker:{_stamp(change)}"
    try:
        db_write(alerts.raise_alert)(
            runtime.engine, kind, occurrence, detail=detail, endpoint=endpoint, at=change.at
        )
    except SQLAlchemyError as exc:
        log_line(
            logging.WARNING,
            "breaker alert not recorded",
            endpoint=endpoint,
            kind=kind,
            error=store.describe_error(exc),
        )
