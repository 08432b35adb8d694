"""Replaying a time range to an endpoint, as a door (:class:`Replay`, :mod:`dispatcher.ops.door`):
``dispatcher replay`` and the console's replay page (no click here).

Each selected delivery becomes a new delivery to the same endpoint, with a new request id,
the same event, data and dispatched_by, and ``replay_of`` naming the original. The range ends
when the replay is asked for, at the latest, so the replays it creates never fall into it.
While the endpoint is disabled the new deliveries are stored ``failed`` with reason
``endpoint_disabled`` and not queued, as ``dispatch()`` stores them
(:mod:`dispatcher.intake.disabled`); the report counts them as ``held_back``.
"""

from __future__ import annotations

import json
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy.engine import Row

from .. import store
from ..errors import InvalidEventData, PayloadTooLarge, UnknownEvent
from ..intake import DispatchRequest
from ..intake.disabled import disabled_endpoints
from ..intake.dispatch import store_and_queue
from ..intake.prepare import prepare_request
from ..runtime import Runtime
from ..store.sealing import Unreadable
from ..times import utcnow
from ..vocabulary import AuditAction, Reason
from .bulk import BATCH_SIZE, IdList, Progress, deliveries
from .bulk_door import BulkDoor
from .door import Plan

REPLAY_ERRORS = (InvalidEventData, UnknownEvent, PayloadTooLarge)


@dataclass
class ReplayReport:
    matched: int
    dry_run: bool
    replayed: int = 0
    ids: IdList = field(default_factory=IdList)
    replays: IdList = field(default_factory=IdList)
    skipped: int = 0
    skipped_items: IdList = field(default_factory=IdList)
    held_back: int = 0
    """Replays stored ``failed`` (``endpoint_disabled``): the endpoint is disabled."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "replayed": self.replayed,
            "dry_run": self.dry_run,
            "request_ids": self.ids.items,
            "request_ids_truncated": self.ids.truncated,
            "replays": self.replays.items,
            "skipped": self.skipped_items.items,
            "held_back": self.held_back,
        }

    counted: ClassVar[tuple[str, ...]] = ("matched", "replayed", "skipped", "held_back")
    """What the audit row counts."""

    def counts(self) -> Mapping[str, Any]:
        return {key: getattr(self, key) for key in self.counted}


class NotReplayable(ValueError):
    """An original whose payload is gone or cannot be read; the message says which."""


def _replay_source(row: Row[Any]) -> tuple[dict[str, Any], str]:
    """The original ``data`` and ``metadata.dispatched_by`` of a stored payload."""
    if row.payload is None:
        raise NotReplayable("its payload was erased (retention or log erase); there is nothing to replay")
    if isinstance(row.payload, Unreadable):
        raise NotReplayable(f"its stored payload cannot be read: {row.payload.problem}")
    stored = json.loads(row.payload)
    data = stored["data"]
    if not isinstance(data, dict):
        raise ValueError("the stored payload's data is not an object")
    dispatched_by = (stored.get("metadata") or {}).get("dispatched_by") or "SYSTEM"
    return data, dispatched_by


def _prepared(
    runtime: Runtime,
    event: str,
    dispatched_by: str,
    items: list[tuple[str, dict[str, Any]]],
    endpoint: str,
    disabled: Container[str],
) -> list[store.NewDelivery]:
    """New deliveries to ``endpoint`` of one event and dispatcher, one per (original, data)."""
    requests = [
        DispatchRequest(event, data, endpoints=(endpoint,), dispatched_by=dispatched_by, replay_of=rid)
        for rid, data in items
    ]
    return prepare_request(runtime.settings, requests, disabled=disabled, keyring=runtime.keyring)


def prepare_replays(
    runtime: Runtime, rows: Sequence[Row[Any]], endpoint: str
) -> tuple[list[store.NewDelivery], list[dict[str, str]]]:
    """New deliveries to ``endpoint`` for a page of originals (same event, ``data`` and
    ``dispatched_by``; ``replay_of`` the original), and the originals that cannot be replayed.
    The endpoint's state is read now, as a dispatch's is: disabled, they are built held back."""
    disabled = disabled_endpoints(runtime, fresh=True)
    groups: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    skipped: list[dict[str, str]] = []
    for row in rows:
        try:
            data, dispatched_by = _replay_source(row)
        except NotReplayable as exc:
            skipped.append({"request_id": row.request_id, "reason": str(exc)})
            continue
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            skipped.append({"request_id": row.request_id, "reason": f"stored payload is unusable: {exc}"})
            continue
        groups.setdefault((row.event, dispatched_by), []).append((row.request_id, data))
    new: list[store.NewDelivery] = []
    for (event, by), items in groups.items():
        try:
            new.extend(_prepared(runtime, event, by, items, endpoint, disabled))
        except REPLAY_ERRORS:
            # One bad original must not hold back the others: retry them one by one.
            for item in items:
                try:
                    new.extend(_prepared(runtime, event, by, [item], endpoint, disabled))
                except REPLAY_ERRORS as exc:
                    skipped.append({"request_id": item[0], "reason": str(exc)})
    return new, skipped


def replay(
    runtime: Runtime,
    selection: store.Selection,
    endpoint: str,
    *,
    matched: int,
    progress: Progress | None = None,
    batch: int = BATCH_SIZE,
) -> ReplayReport:
    """Re-sends the selected deliveries to ``endpoint`` as new deliveries (new request ids).

    ``selection.until`` must be set (the caller fixes it at the start, at the latest), so the
    replays this run creates, stamped later, never fall into the range it is reading.
    """
    if selection.until is None:
        raise ValueError("replay needs an upper bound on created_at")
    selection = replace(selection, endpoint=endpoint)
    report = ReplayReport(matched=matched, dry_run=False)
    for page in store.pages(runtime.engine, selection, ("request_id", "event", "payload"), batch=batch):
        new, skipped = prepare_replays(runtime, page, endpoint)
        store_and_queue(runtime, new)
        report.replayed += len(new)
        report.held_back += sum(1 for d in new if d.reason == Reason.ENDPOINT_DISABLED)
        report.ids.extend([d.replay_of for d in new])
        report.replays.extend([{"replay_of": d.replay_of, "request_id": d.request_id} for d in new])
        report.skipped += len(skipped)
        report.skipped_items.extend(skipped)
        if progress:
            progress(len(page))
    return report


class Replay(BulkDoor[ReplayReport]):
    """Send the deliveries made to ``endpoint`` in a range to it again, as new deliveries
    (``selection.endpoint`` is set to it). The range ends at ``now`` at the latest (the time the
    door is made, unless given), so the replays, stamped later, never fall into it."""

    action = AuditAction.REPLAY

    def __init__(
        self,
        selection: store.Selection,
        endpoint: str,
        *,
        now: datetime | None = None,
        batch: int = BATCH_SIZE,
    ) -> None:
        now = now if now is not None else utcnow()
        self.until = now if selection.until is None else min(selection.until, now)
        self.endpoint = endpoint
        self.selection = replace(selection, endpoint=endpoint, until=self.until)
        self.batch = batch

    def plan(self, runtime: Runtime) -> Plan:
        """Raises :class:`~dispatcher.errors.UnknownEndpoint` for an endpoint not configured."""
        runtime.settings.require_endpoint(self.endpoint)
        matched = store.count(runtime.engine, self.selection)
        return self.planned(
            matched,
            f"Send {deliveries(matched)} again to {self.endpoint}, as new deliveries with new request ids",
        )

    def report(self, matched: int, ids: IdList, *, dry_run: bool) -> ReplayReport:
        return ReplayReport(matched=matched, dry_run=dry_run, ids=ids)

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> ReplayReport:
        return replay(
            runtime,
            self.selection,
            self.endpoint,
            matched=plan.count or 0,
            progress=progress,
            batch=self.batch,
        )
