"""Sending the alerts' due send rows, each through its channel, and recording what it answered.

A due row is claimed first (:func:`dispatcher.store.alerts.claim_send`: the try is counted and
the row held for :data:`HOLD_SECONDS`), so two senders never try the same row at once and a
sender that dies mid-try leaves it to be tried again later. A channel that took the alert makes
the row ``sent``; one that did not is tried again after a backoff (30 s doubling to an hour:
:mod:`dispatcher.policy.alerting`), a due time in the row and never a sleep, and after
:data:`~dispatcher.policy.alerting.MAX_TRIES` tries the row is ``failed``. A pass sends for at
most :data:`BUDGET_SECONDS`; what is left is due at the next pass.

``dispatcher alerts test`` sends a ``test`` alert through the channels named, at once and once
(:func:`send_test`): what each answered is the point, nothing is tried again.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from ..config.alert_settings import AlertSettings
from ..logs import log_line
from ..policy import alerting
from ..store import alerts as stored
from ..times import format_utc
from ..vocabulary import AlertKind
from . import channels
from .channels import Answer

HOLD_SECONDS = 120
"""A claimed row is not due again for this long (longer than any one try)."""
BUDGET_SECONDS = 20.0
"""A pass starts no new try after this long."""
TEST_DETAIL = "a test alert from `dispatcher alerts test`: this channel reaches the people on call"


@dataclass(frozen=True)
class Sent:
    """One try: the alert, the channel, what it answered and what the row became."""

    alert_id: int
    kind: str
    channel: str
    ok: bool
    answer: str
    status: str


@dataclass
class SendReport:
    tries: list[Sent] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for sent in self.tries if sent.status == status)


def send_due(
    engine: Engine,
    alerts: AlertSettings,
    environment: str,
    now: datetime,
    budget: float = BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> SendReport:
    """Tries every send row due by ``now``, longest due first, within ``budget`` seconds."""
    report = SendReport()
    deadline = clock() + budget
    for alert, send in stored.due_sends(engine, now):
        if clock() >= deadline:
            break
        channel = alerts.channel(send.channel)
        if channel is None:
            answer = f"no alert channel is named {send.channel!r} in the configuration any more"
            stored.mark_failed(engine, alert.id, send.channel, answer)
            report.tries.append(Sent(alert.id, alert.kind, send.channel, False, answer, stored.FAILED))
            continue
        if not stored.claim_send(engine, send, now, timedelta(seconds=HOLD_SECONDS)):
            continue  # another sender took it
        answered = channels.send(channel, alert, environment)
        status = record(engine, alert.id, send.channel, answered, send.attempts + 1, now)
        report.tries.append(Sent(alert.id, alert.kind, send.channel, answered.ok, answered.text, status))
        _log(alert, send.channel, answered, status, send.attempts + 1)
    return report


def record(engine: Engine, alert_id: int, channel: str, answer: Answer, tries: int, now: datetime) -> str:
    """Records one try's answer: sent, pending again at its next try, or failed; the status."""
    if answer.ok:
        stored.mark_sent(engine, alert_id, channel, answer.text, now)
        return stored.SENT
    next_at = alerting.next_try(tries, now)
    if next_at is None:
        stored.mark_failed(engine, alert_id, channel, answer.text)
        return stored.FAILED
    stored.mark_retry(engine, alert_id, channel, answer.text, next_at)
    return stored.PENDING


def _log(alert: stored.Alert, channel: str, answer: Answer, status: str, tries: int) -> None:
    level = logging.INFO if answer.ok else logging.WARNING
    log_line(
        level,
        "alert " + status,
        kind=alert.kind,
        alert=alert.id,
        channel=channel,
        tries=tries,
        answer=answer.text,
    )


def send_test(
    engine: Engine, alerts: AlertSettings, environment: str, names: Sequence[str], now: datetime
) -> SendReport:
    """Raises a ``test`` alert routed to the channels ``names`` and sends it through each once:
    ``sent`` or ``failed`` with what it answered."""
    kind = AlertKind.TEST
    occurrence = f"{kind}:{format_utc(now)}:{secrets.token_hex(4)}"
    alert_id = stored.raise_routed(engine, kind, occurrence, names, detail=TEST_DETAIL, at=now)
    report = SendReport()
    found = stored.alert_with_sends(engine, alert_id) if alert_id is not None else None
    if found is None:  # pragma: no cover - the random part makes each test alert new
        return report
    alert, sends = found
    by_channel = {send.channel: send for send in sends}
    for name in dict.fromkeys(names):
        channel, send = alerts.channel(name), by_channel.get(name)
        if (
            channel is None
            or send is None
            or not stored.claim_send(engine, send, now, timedelta(seconds=HOLD_SECONDS))
        ):
            continue
        answered = channels.send(channel, alert, environment)
        if answered.ok:
            stored.mark_sent(engine, alert.id, name, answered.text, now)
        else:
            stored.mark_failed(engine, alert.id, name, answered.text)
        status = stored.SENT if answered.ok else stored.FAILED
        report.tries.append(Sent(alert.id, kind, name, answered.ok, answered.text, status))
    return report
