"""Each endpoint's circuit breaker in Redis, shared by every worker (the decisions are
:mod:`dispatcher.policy.breaker`'s).

An endpoint's breaker is one hash (``dispatcher:breaker:<endpoint>``: open or not, its
generation, since when it is open, until when, for how long this time, which delivery probes it
and until when) and its window of recent results, a hash of per-second counts
(``dispatcher:breaker:<endpoint>:window``) that expires on its own. Two Lua scripts: one
counts a result and reads the window (``breaker_record.lua``), one makes a change -- open,
take or give back the probe's turn, reopen, close -- only if the breaker's generation is still
the one read (``breaker_move.lua``), so when several workers see the same failures exactly one
of them opens it, and exactly one probe's answer closes it. Times are Redis's clock (``TIME``),
the same for every worker on every host; a test may pass ``now``.

Every function here raises ``redis.RedisError`` when Redis does not answer; the worker then
sends as if the breaker were closed (:mod:`dispatcher.worker.breaking`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import redis

from .. import lua
from ..config import BreakerSettings
from ..policy import breaker as policy
from ..times import format_utc
from ..vocabulary import BreakerState

_RECORD = redis.Redis().register_script(lua.load(__package__, "breaker_record.lua"))
_MOVE = redis.Redis().register_script(lua.load(__package__, "breaker_move.lua"))
"""Both run by EVALSHA (sent once per Redis server); no connection is made here."""

GAUGE = {BreakerState.CLOSED: 0, BreakerState.OPEN: 1, BreakerState.HALF_OPEN: 2}
"""``dispatcher_endpoint_breaker_state``'s value for each state."""


def state_key(endpoint: str) -> str:
    return f"dispatcher:breaker:{endpoint}"


def window_key(endpoint: str) -> str:
    return f"dispatcher:breaker:{endpoint}:window"


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class BreakerView:
    """An endpoint's breaker as operators see it (``endpoints list``/``show``, the console, the
    metrics): its state, and while open since when and until when (the probe time)."""

    state: BreakerState
    open_until: datetime | None = None
    since: datetime | None = None

    @property
    def gauge(self) -> int:
        """0 closed, 1 open, 2 half-open."""
        return GAUGE[self.state]

    def text(self) -> str:
        """``closed``, ``open until 2026-12-07T20:01:32Z`` or ``half-open``."""
        if self.state is BreakerState.OPEN and self.open_until is not None:
            return f"open until {format_utc(self.open_until)}"
        return "half-open" if self.state is BreakerState.HALF_OPEN else "closed"


class Move(StrEnum):
    OPENED = "opened"
    """It opened from closed (the alert's occasion)."""
    REOPENED = "reopened"
    """A probe failed: open again, for longer."""
    CLOSED = "closed"
    """A probe was answered: closed (the recovery's occasion)."""


@dataclass(frozen=True)
class Change:
    """A change this process won: what it was, when, until when it is open (None once closed),
    since when it was open (its opening's time, which names its alert), and for an opening the
    window that opened it."""

    move: Move
    at: datetime
    open_until: datetime | None
    since: datetime | None
    attempts: int = 0
    failures: int = 0


def _text(raw: bytes | str | None) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


def _number(raw: bytes | str | None) -> float | None:
    text = _text(raw)
    return float(text) if text else None


def _stored(fields: dict[bytes, bytes]) -> policy.Stored:
    """The breaker as its hash holds it (an empty hash: closed)."""
    got = {_text(k): _text(v) for k, v in fields.items()}
    if not got:
        return policy.CLOSED
    open_seconds = _number(got.get("open_seconds"))
    return policy.Stored(
        open=got.get("open") == "1",
        generation=int(got.get("generation") or 0),
        since=_number(got.get("since")),
        opened_at=_number(got.get("opened_at")),
        open_until=_number(got.get("open_until")),
        open_seconds=int(open_seconds) if open_seconds is not None else None,
        probe=got.get("probe"),
        probe_until=_number(got.get("probe_until")),
    )


def _redis_seconds(raw: tuple[int, int]) -> float:
    seconds, micros = raw
    return seconds + micros / 1_000_000


def read(client: redis.Redis, endpoint: str, now: float | None = None) -> tuple[policy.Stored, float]:
    """The breaker as stored, and the time it was read (Redis's clock unless ``now``): one round trip."""
    with client.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.hgetall(state_key(endpoint))
        clock, fields = pipe.execute()
    return _stored(fields), _redis_seconds(clock) if now is None else now


def _move(
    client: redis.Redis,
    endpoint: str,
    change: str,
    generation: int,
    *,
    request_id: str = "",
    seconds: float = 0,
    now: float | None = None,
) -> tuple[datetime, datetime | None, datetime | None] | None:
    """Runs ``breaker_move.lua``. When the change was made: when, until when the breaker is
    open (None once closed) and since when it was open; else None."""
    done = _MOVE(
        keys=[state_key(endpoint), window_key(endpoint)],
        args=[change, generation, "" if now is None else repr(now), request_id, seconds],
        client=client,
    )
    if not done or int(done[0]) != 1:
        return None
    at, open_until, since = (_number(v) for v in done[1:4])
    assert at is not None
    return datetime.fromtimestamp(at, UTC), _moment(open_until), _moment(since)


def admit(
    client: redis.Redis, endpoint: str, request_id: str, probe_seconds: float, now: float | None = None
) -> policy.Admit:
    """What the breaker says to a delivery about to be sent: go (closed), wait (open; or
    half-open and another delivery probes), or probe -- the half-open breaker's one turn, won
    by exactly one delivery across all workers and held ``probe_seconds`` at most. A delivery
    that is told to probe must report its result (:func:`settle_probe`) or give the turn back
    (:func:`release_probe`)."""
    for _ in range(2):  # a lost race for the turn is read again once: the winner holds it then
        stored, at = read(client, endpoint, now)
        decision = policy.admit(stored, request_id, at)
        if decision.admission is not policy.Admission.PROBE:
            return decision
        taken = _move(
            client,
            endpoint,
            "probe",
            stored.generation,
            request_id=request_id,
            seconds=probe_seconds,
            now=now,
        )
        if taken is not None:
            return decision
    return policy.Admit(policy.Admission.WAIT, policy.PROBE_WAIT_SECONDS)


def record(
    client: redis.Redis,
    endpoint: str,
    settings: BreakerSettings,
    result: policy.Sample,
    now: float | None = None,
) -> Change | None:
    """Counts one attempt's result (not a probe's: see :func:`settle_probe`): :func:`record_many`
    of one."""
    if result is policy.Sample.NOTHING:
        return None
    return record_many(client, endpoint, settings, 1, int(result is policy.Sample.FAILED), now)


def record_many(
    client: redis.Redis,
    endpoint: str,
    settings: BreakerSettings,
    attempts: int,
    failures: int,
    now: float | None = None,
) -> Change | None:
    """Counts ``attempts`` results, ``failures`` of them retryable failures, in the window (one
    round trip for the attempts a flight recorded together), and opens the breaker when the
    policy says so. Returns the opening when this call made it (every other worker that saw the
    same window loses the compare-and-set), else None."""
    if attempts <= 0:
        return None
    counted, failed, is_open, generation = _RECORD(
        keys=[state_key(endpoint), window_key(endpoint)],
        args=["" if now is None else repr(now), settings.window_seconds, attempts, failures],
        client=client,
    )
    counted, failed = int(counted), int(failed)
    if _text(is_open) == "1" or not policy.opens(counted, failed, settings):
        return None
    made = _move(client, endpoint, "open", int(generation), seconds=settings.open_seconds, now=now)
    return None if made is None else Change(Move.OPENED, *made, counted, failed)


def settle_probe(
    client: redis.Redis,
    endpoint: str,
    settings: BreakerSettings,
    request_id: str,
    result: policy.Sample,
    now: float | None = None,
) -> Change | None:
    """The probe's result: closes the breaker (answered), opens it again for longer (failed), or
    gives the turn back (it never reached the partner). Returns the closing or reopening when
    this call made it; None when it only gave the turn back, or ``request_id`` no longer holds
    the turn (it outlasted it, and another delivery probes)."""
    stored, _ = read(client, endpoint, now)
    if not stored.open or stored.probe != request_id:
        return None
    verdict = policy.after_probe(result)
    if verdict is policy.AfterProbe.RELEASE:
        _move(client, endpoint, "release", stored.generation, request_id=request_id, now=now)
        return None
    closing = verdict is policy.AfterProbe.CLOSE
    seconds = 0 if closing else policy.reopen_seconds(stored.open_seconds, settings)
    made = _move(
        client, endpoint, str(verdict), stored.generation, request_id=request_id, seconds=seconds, now=now
    )
    return None if made is None else Change(Move.CLOSED if closing else Move.REOPENED, *made)


def release_probe(client: redis.Redis, endpoint: str, request_id: str, now: float | None = None) -> bool:
    """Gives back the probe's turn ``request_id`` holds (it was not sent after all: another gate
    held it back); True when it held it."""
    stored, _ = read(client, endpoint, now)
    if stored.probe != request_id:
        return False
    return _move(client, endpoint, "release", stored.generation, request_id=request_id, now=now) is not None


def states(client: redis.Redis, names: Iterable[str], now: float | None = None) -> dict[str, BreakerView]:
    """Each named endpoint's breaker as operators see it, in one round trip (an endpoint never
    opened is closed). The caller shows ``off`` for an endpoint whose breaker is off."""
    names = list(names)
    with client.pipeline(transaction=False) as pipe:
        pipe.time()
        for name in names:
            pipe.hgetall(state_key(name))
        clock, *hashes = pipe.execute()
    at = _redis_seconds(clock) if now is None else now
    views = {}
    for name, fields in zip(names, hashes, strict=True):
        stored = _stored(fields)
        views[name] = BreakerView(
            policy.state_at(stored, at), _moment(stored.open_until), _moment(stored.since)
        )
    return views
