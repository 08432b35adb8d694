"""Operators change the endpoints themselves, while workers run (``dispatcher endpoints
add|edit|show|pause|resume|rotate-key|rotate-secret|remove|import``, the console's endpoint
actions and the coming HTTP API, each through the same door; no click here).

The database holds the endpoints (:mod:`dispatcher.store.endpoint_catalog`); every door first
imports the file's on a fresh install, so the first change is made to them. A new or changed
endpoint is checked exactly as one written in the file (the same names, the same validation,
each mistake one :class:`~dispatcher.errors.ConfigError` naming the setting), before anything
is written. Each write raises the catalog's generation, which every running process looks at
about once a second, so workers take the change within seconds; the process that made it takes
it at once. Each door's audit row names the endpoint and the settings changed, never a value.

:class:`Add`, :class:`Edit`, :class:`Pause` and :class:`Resume` (a paused endpoint's deliveries
wait, using no attempt; resuming sends them on in dispatch order), :class:`Remove` (refused while
deliveries to it are pending, unless forced: they are failed ``endpoint_removed``, and the log
rows stay) are here; the rotations are :mod:`.endpoint_rotation`'s and the import
:mod:`.endpoint_import`'s, named here too. :func:`endpoint_view` is what ``show`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from .. import queue, store
from ..config.document import endpoint_document
from ..errors import ConfigError, DispatcherError
from ..redaction import mask_url
from ..runtime import Runtime
from ..store import endpoint_catalog
from ..store import endpoints as states
from ..store.endpoint_catalog import EndpointExists
from ..times import utcnow
from ..vocabulary import AuditAction, Reason
from .bulk import Progress
from .door import Door, Plan
from .endpoint_import import Import, Imported, file_differences
from .endpoint_rotation import KeyRotated, RotateKey, RotateSecret, SecretRotated
from .endpoints import (
    breaker_words,
    canonical,
    checked,
    differing,
    edited,
    known_endpoint,
    nested,
    plain,
    stored_endpoint,
    taken,
)

__all__ = [
    "Add",
    "Added",
    "Edit",
    "Edited",
    "EndpointBusy",
    "EndpointExists",
    "Import",
    "Imported",
    "KeyRotated",
    "Pause",
    "Paused",
    "Remove",
    "Removed",
    "Resume",
    "Resumed",
    "RotateKey",
    "RotateSecret",
    "SecretRotated",
    "edited",
    "endpoint_view",
    "file_differences",
]

LIVE = "Running workers take it within seconds."


class EndpointBusy(DispatcherError):
    """An endpoint still has pending deliveries, and removing it was not forced."""

    def __init__(self, name: str, pending: int) -> None:
        self.name = name
        self.pending = pending
        noun = "delivery" if pending == 1 else "deliveries"
        super().__init__(
            f"endpoint {name} has {pending:,} pending {noun}; nothing was removed "
            f"(--force fails them, reason {Reason.ENDPOINT_REMOVED}, and removes it)"
        )


@dataclass(frozen=True)
class Added:
    """What :class:`Add` did: the endpoint stored."""

    name: str

    def counts(self) -> Mapping[str, Any]:
        return {"added": 1}

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.name, "added": True}


@dataclass(frozen=True)
class Add(Door[Added]):
    """Stores a new endpoint, given as the file would write it (``name``, ``url`` and any other
    setting by its file name), after the others. A bad setting or a name in use is one error from
    the plan, with nothing written."""

    action: ClassVar[AuditAction] = AuditAction.ENDPOINTS_ADD
    definition: Mapping[str, Any]
    """By file names, or dotted paths into them (``headers.X-Partner-Account``)."""

    def plan(self, runtime: Runtime) -> Plan:
        runtime.adopt_file_endpoints()
        definition = plain(nested(self.definition))
        endpoint = checked(runtime, definition)
        if endpoint_catalog.stored(runtime.engine, endpoint.name) is not None:
            raise EndpointExists(endpoint.name)
        events = "every event" if "*" in endpoint.events else ", ".join(endpoint.events)
        return Plan(
            self.action,
            None,
            f"Add endpoint {endpoint.name} at {mask_url(endpoint.url)} for {events}. {LIVE}",
            {"endpoint": endpoint.name, "settings": [k for k in definition if k != "name"]},
        )

    def nothing_to_do(self, plan: Plan) -> bool:
        return False

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> Added:
        endpoint_catalog.add(runtime.engine, plain(nested(self.definition)))
        taken(runtime)
        return Added(plan.selection["endpoint"])


@dataclass(frozen=True)
class Edited:
    """What :class:`Edit` did: the names of the settings it changed (none: nothing changed)."""

    name: str
    settings: tuple[str, ...]

    def counts(self) -> Mapping[str, Any]:
        return {"changed": len(self.settings)}

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.name, "changed": list(self.settings)}


@dataclass(frozen=True)
class Edit(Door[Edited]):
    """Changes settings of a stored endpoint: ``changes`` sets each (a file name, or a dotted
    path into one), ``unset`` removes each (back to its default). The result is checked as a new
    endpoint is; its signing secrets being retired keep their grace."""

    action: ClassVar[AuditAction] = AuditAction.ENDPOINTS_EDIT
    name: str
    changes: Mapping[str, Any]
    unset: tuple[str, ...] = ()

    def _edited(self, runtime: Runtime) -> tuple[dict[str, Any], tuple[str, ...], datetime]:
        """The stored mapping edited, the settings that changes (a setting written with the
        value it had, or its default, is no change), and when the stored one was last changed."""
        row = stored_endpoint(runtime, self.name)
        before = plain(row.definition)
        after = plain(edited(before, self.changes, self.unset))
        checked(runtime, after, row.retiring_at(utcnow()))
        settings = runtime.settings
        return after, differing(canonical(before, settings), canonical(after, settings)), row.updated_at

    def plan(self, runtime: Runtime) -> Plan:
        _after, settings, _read_at = self._edited(runtime)
        said = ", ".join(settings) if settings else "nothing (the values given are those stored)"
        return Plan(
            self.action,
            None,
            f"Change {said} of endpoint {self.name}. {LIVE}",
            {"endpoint": self.name, "settings": list(settings)},
            details={"settings": settings},
        )

    def nothing_to_do(self, plan: Plan) -> bool:
        return not plan.details["settings"]

    def previewed(self, runtime: Runtime, plan: Plan, *, dry_run: bool) -> Edited:
        return Edited(self.name, ())

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> Edited:
        after, settings, read_at = self._edited(runtime)
        if settings:
            endpoint_catalog.update(runtime.engine, self.name, after, read_at=read_at)
            taken(runtime)
        return Edited(self.name, settings)

    def audit_selection(self, plan: Plan, outcome: Edited) -> Mapping[str, Any]:
        return {"endpoint": self.name, "settings": list(outcome.settings)}


@dataclass(frozen=True)
class Paused:
    """What :class:`Pause` did: whether the endpoint was running until then."""

    changed: bool

    def counts(self) -> Mapping[str, Any]:
        return {"changed": int(self.changed)}


@dataclass(frozen=True)
class Pause(Door[Paused]):
    """Pauses an endpoint: its deliveries wait -- recorded, queued for later, no attempt used --
    until it is resumed (disabling stays what it is: new deliveries recorded failed). The plan's
    count is its pending deliveries."""

    action: ClassVar[AuditAction] = AuditAction.ENDPOINTS_PAUSE
    name: str

    def plan(self, runtime: Runtime) -> Plan:
        stored_endpoint(runtime, self.name)
        pending = states.pending_count(runtime.engine, self.name)
        return Plan(
            self.action,
            pending,
            f"Pause endpoint {self.name}: its deliveries wait (recorded, queued for later, no "
            f"attempt used) until it is resumed; {pending:,} pending now. {LIVE}",
            {"endpoint": self.name},
        )

    def nothing_to_do(self, plan: Plan) -> bool:
        return False

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> Paused:
        changed = states.set_endpoint_paused(runtime.engine, self.name, True)
        taken(runtime)
        return Paused(changed)


@dataclass(frozen=True)
class Resumed:
    """What :class:`Resume` did: whether the endpoint was paused, and how many of its waiting
    deliveries go on (each sent to the queue now, or there already)."""

    changed: bool
    woken: int

    def counts(self) -> Mapping[str, Any]:
        return {"changed": int(self.changed), "woken": self.woken}


@dataclass(frozen=True)
class Resume(Door[Resumed]):
    """Resumes a paused endpoint and sends its waiting deliveries to the queue at once, in
    dispatch order (a retry still in its backoff keeps its time). The plan's count is how many
    wait."""

    action: ClassVar[AuditAction] = AuditAction.ENDPOINTS_RESUME
    name: str

    def plan(self, runtime: Runtime) -> Plan:
        stored_endpoint(runtime, self.name)
        waiting = len(states.waiting_deliveries(runtime.engine, self.name, due_by=utcnow()))
        return Plan(
            self.action,
            waiting,
            f"Resume endpoint {self.name}: its {waiting:,} waiting deliveries go on, in dispatch order.",
            {"endpoint": self.name},
        )

    def nothing_to_do(self, plan: Plan) -> bool:
        return False

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> Resumed:
        changed = states.set_endpoint_paused(runtime.engine, self.name, False)
        taken(runtime)
        waiting = states.waiting_deliveries(runtime.engine, self.name, due_by=utcnow())
        if waiting:
            queue.wake(runtime.queue, waiting)  # a job queued or running already is left as it is
        if progress:
            progress(len(waiting))
        return Resumed(changed, len(waiting))


@dataclass(frozen=True)
class Removed:
    """What :class:`Remove` did: the endpoint removed, and how many pending deliveries failed."""

    name: str
    failed: int

    def counts(self) -> Mapping[str, Any]:
        return {"removed": 1, "failed": self.failed}

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.name, "removed": True, "failed": self.failed}


@dataclass(frozen=True)
class Remove(Door[Removed]):
    """Removes an endpoint; its deliveries stay in the log. The plan's count is its pending
    deliveries: running it while there are any raises :class:`EndpointBusy` unless ``force``,
    which fails those waiting (reason ``endpoint_removed``, no attempt used; one a worker holds
    right now ends with its attempt)."""

    action: ClassVar[AuditAction] = AuditAction.ENDPOINTS_REMOVE
    name: str
    force: bool = False

    def plan(self, runtime: Runtime) -> Plan:
        stored_endpoint(runtime, self.name)
        pending = states.pending_count(runtime.engine, self.name)
        failing = (
            f"; its {pending:,} pending deliveries are failed ({Reason.ENDPOINT_REMOVED})" if pending else ""
        )
        return Plan(
            self.action,
            pending,
            f"Remove endpoint {self.name}{failing}; its deliveries stay in the log.",
            {"endpoint": self.name, **({"force": True} if self.force else {})},
        )

    def nothing_to_do(self, plan: Plan) -> bool:
        return False

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> Removed:
        pending = states.pending_count(runtime.engine, self.name)
        if pending and not self.force:
            raise EndpointBusy(self.name, pending)
        if endpoint_catalog.remove(runtime.engine, self.name) is None:
            raise store_unknown(runtime, self.name)
        failed = states.fail_waiting(runtime.engine, self.name, Reason.ENDPOINT_REMOVED)
        states.forget_endpoint_state(runtime.engine, self.name)
        taken(runtime)
        return Removed(self.name, failed)


def store_unknown(runtime: Runtime, name: str) -> DispatcherError:
    """The error for an endpoint removed by someone else between the plan and the run."""
    from ..errors import UnknownEndpoint

    runtime.refresh_endpoints(force=True)
    return UnknownEndpoint(name, [e.name for e in runtime.settings.endpoints])


def endpoint_view(runtime: Runtime, name: str) -> dict[str, Any]:
    """What ``dispatcher endpoints show`` prints of one endpoint: its settings as the file names
    them with every secret masked (the delivery settings those in force for it), its state
    (disabled and why, paused), its pending deliveries, when its retiring signing secrets stop
    signing, and ``breaker`` (its circuit breaker's state in words).

    Raises:
        UnknownEndpoint: no endpoint has that name.
    """
    endpoint = known_endpoint(runtime, name)
    row = endpoint_catalog.stored(runtime.engine, name)
    if row is not None:
        try:
            endpoint = checked(runtime, row.definition)  # its own secrets, not those retiring
        except ConfigError:
            pass  # unusable on this host: the one in force is shown
    state = store.endpoint_states(runtime.engine).get(name, {})
    now = utcnow()
    return {
        "name": endpoint.name,
        "settings": endpoint_document(endpoint, runtime.settings.delivery_for(endpoint)),
        "disabled": bool(state.get("disabled")),
        "reason": state.get("reason") if state.get("disabled") else None,
        "disabled_at": state.get("disabled_at"),
        "paused": bool(state.get("paused")),
        "paused_at": state.get("paused_at"),
        "breaker": breaker_words(runtime, [endpoint])[endpoint.name],
        "pending": states.pending_count(runtime.engine, name),
        "retiring_signing_secrets": [r.until for r in row.retiring if r.until > now] if row else [],
        "created_at": row.created_at if row else None,
        "updated_at": row.updated_at if row else None,
    }
