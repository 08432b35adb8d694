"""Alerts for operators (``dispatcher alerts``; no click here): the alerts recorded with what
each channel answered (:func:`alert_documents`), the door that sends a test alert
(:class:`AlertsTest`, audited) and the check that evaluates and sends when no worker runs
(:func:`check`, for cron or a systemd timer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from ..alerts.run import PassReport, run_once
from ..alerts.sending import Sent, send_test
from ..errors import DispatcherError
from ..runtime import Runtime
from ..store import alerts as stored
from ..times import utcnow
from ..vocabulary import AuditAction
from .bulk import Progress
from .door import Door, Plan


def alert_documents(runtime: Runtime, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ``limit`` alerts, newest first, each with its sends (``alerts list --json``)."""
    documents = []
    for alert, sends in stored.list_alerts(runtime.engine, limit):
        documents.append(
            {
                "id": alert.id,
                "kind": alert.kind,
                "occurred_at": alert.occurred_at,
                "endpoint": alert.endpoint,
                "count": alert.count,
                "request_ids": list(alert.request_ids),
                "detail": alert.detail,
                "resolved_at": alert.resolved_at,
                "sends": [
                    {
                        "channel": send.channel,
                        "status": send.status,
                        "attempts": send.attempts,
                        "next_at": send.next_at if send.status == stored.PENDING else None,
                        "answer": send.answer,
                        "sent_at": send.sent_at,
                    }
                    for send in sends
                ],
            }
        )
    return documents


@dataclass(frozen=True)
class Tested:
    """What each channel answered to the test alert."""

    tries: tuple[Sent, ...]

    @property
    def failed(self) -> bool:
        return any(not sent.ok for sent in self.tries)

    def counts(self) -> dict[str, int]:
        ok = sum(1 for sent in self.tries if sent.ok)
        return {"sent": ok, "failed": len(self.tries) - ok}

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.tries[0].alert_id if self.tries else None,
            "channels": [{"channel": s.channel, "ok": s.ok, "answer": s.answer} for s in self.tries],
        }


@dataclass(frozen=True)
class AlertsTest(Door[Tested]):
    """Send a ``test`` alert through channel ``channel`` (None: every configured channel), once,
    whatever the rules say, and say what each answered."""

    action: ClassVar[AuditAction] = AuditAction.ALERTS_TEST
    channel: str | None = None

    def plan(self, runtime: Runtime) -> Plan:
        names = [channel.name for channel in runtime.settings.alerts.channels]
        if not names:
            raise DispatcherError("no alert channels are configured (alerts.channels)")
        if self.channel is not None and self.channel not in names:
            raise DispatcherError(
                f"no alert channel is named {self.channel!r} (channels: {', '.join(names)})"
            )
        chosen = [self.channel] if self.channel is not None else names
        return Plan(self.action, None, f"Send a test alert to {', '.join(chosen)}.", {"channels": chosen})

    def nothing_to_do(self, plan: Plan) -> bool:
        return False

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> Tested:
        settings = runtime.settings
        names = list(plan.selection["channels"])
        report = send_test(runtime.engine, settings.alerts, settings.environment, names, utcnow())
        return Tested(tuple(report.tries))


def check(runtime: Runtime, now: datetime | None = None) -> PassReport | None:
    """One alerts pass that may raise ``workers.none_alive`` (and runs without Redis if it must);
    None when alerts are not configured or another process is running a pass."""
    return run_once(runtime, now, include_none_alive=True)
