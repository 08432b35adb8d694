"""Endpoint health for operators: the configured endpoints with their state, and the two doors
on one (``dispatcher endpoints``, the console's endpoint actions; no click here):
:class:`Disable` and :class:`Enable` (re-sending what was held back while it was disabled, if
asked). An unknown name is :class:`~dispatcher.errors.UnknownEndpoint` from the plan, before
anything is written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import store
from ..runtime import Runtime
from ..vocabulary import AuditAction
from .bulk import Progress
from .door import Door, Plan
from .resend import reopen_and_queue

DEFAULT_REASON = "disabled by an operator"
"""The reason recorded when the operator gives none."""


def endpoint_rows(runtime: Runtime) -> list[dict[str, Any]]:
    """Every configured endpoint with its state and how many deliveries it holds back."""
    states = store.endpoint_states(runtime.engine)
    rows = []
    for endpoint in runtime.settings.endpoints:
        state = states.get(endpoint.name, {})
        disabled = bool(state.get("disabled"))
        rows.append(
            {
                "name": endpoint.name,
                "url": endpoint.url,
                "events": list(endpoint.events),
                "disabled": disabled,
                "reason": state.get("reason"),
                "disabled_at": state.get("disabled_at"),
                "held_back": len(store.held_back(runtime.engine, endpoint.name)) if disabled else 0,
            }
        )
    return rows


def resend_held_back(runtime: Runtime, name: str, progress: Progress | None = None) -> int:
    """Re-queues the deliveries failed ``endpoint_disabled`` for endpoint ``name`` (a fresh
    attempt budget each, same request ids); returns how many were re-queued."""
    held = store.held_back(runtime.engine, name)
    requeued = 0
    for request_id in held:
        if reopen_and_queue(runtime, request_id):
            requeued += 1
        if progress:
            progress(1)
    return requeued


@dataclass(frozen=True)
class Disabled:
    """What :class:`Disable` did: whether the endpoint was enabled until then."""

    changed: bool

    def counts(self) -> Mapping[str, Any]:
        return {"changed": int(self.changed)}


@dataclass(frozen=True)
class Enabled:
    """What :class:`Enable` did: whether the endpoint was disabled until then, how many
    deliveries it held back, and how many of them were re-queued."""

    changed: bool
    held_back: int
    requeued: int
    resent: bool
    """Whether re-sending was asked for and there was something to re-send."""

    def counts(self) -> Mapping[str, Any]:
        return {"changed": int(self.changed), "held_back": self.held_back, "requeued": self.requeued}


@dataclass(frozen=True)
class Disable(Door[Disabled]):
    """Stop sending to endpoint ``name``: new deliveries to it are stored failed
    (``endpoint_disabled``) and not sent, until it is enabled."""

    action: ClassVar[AuditAction] = AuditAction.ENDPOINTS_DISABLE
    name: str
    reason: str = DEFAULT_REASON

    def plan(self, runtime: Runtime) -> Plan:
        endpoint = runtime.settings.require_endpoint(self.name)
        return Plan(
            self.action,
            None,
            "New deliveries to it are recorded failed (endpoint_disabled) and not sent, until it is enabled.",
            {"endpoint": endpoint.name, "reason": self.reason},
        )

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> Disabled:
        return Disabled(store.disable(runtime.engine, plan.selection["endpoint"], self.reason))


@dataclass(frozen=True)
class Enable(Door[Enabled]):
    """Send to endpoint ``name`` again, and with ``resend`` re-queue the deliveries it held back
    while disabled (the plan's count); without, they stay failed (``dispatcher retry`` re-sends
    any of them)."""

    action: ClassVar[AuditAction] = AuditAction.ENDPOINTS_ENABLE
    name: str
    resend: bool = False

    def plan(self, runtime: Runtime) -> Plan:
        endpoint = runtime.settings.require_endpoint(self.name)
        held = len(store.held_back(runtime.engine, endpoint.name))
        resent = {"resend": True} if self.resend and held else {}
        return Plan(
            self.action,
            held,
            f"Send to it again. {held:,} deliveries were held back while it was disabled.",
            {"endpoint": endpoint.name, **resent},
            details={"held_back": held},
        )

    def nothing_to_do(self, plan: Plan) -> bool:
        """Never: the count is what it held back, enabling is the action."""
        return False

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> Enabled:
        name, held = plan.selection["endpoint"], plan.count or 0
        changed = store.enable(runtime.engine, name)
        resent = bool(plan.selection.get("resend"))
        requeued = resend_held_back(runtime, name, progress) if resent else 0
        return Enabled(changed, held, requeued, resent)
