"""What the bulk operations share: their batch size, a progress callback, the capped list of
request ids a report carries (and a dry run's first ids), and the words a plan uses for a count
and a selection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from .. import store
from ..times import format_utc

BATCH_SIZE = 1000
"""Rows read, changed and queued per transaction / Redis pipeline."""
ID_CAP = 1000
"""Most request ids a report lists (``request_ids_truncated`` says when there were more)."""

Progress = Callable[[int], None]
"""Called after each batch with the number of deliveries it handled."""


@dataclass
class IdList:
    """Request ids kept for a report: the first :data:`ID_CAP`, and whether there were more."""

    cap: int = ID_CAP
    items: list[Any] = field(default_factory=list)
    truncated: bool = False

    def extend(self, values: Sequence[Any]) -> None:
        room = self.cap - len(self.items)
        if len(values) > room:
            self.truncated = True
        if room > 0:
            self.items.extend(values[:room])


def first_ids(engine: Engine, selection: store.Selection, matched: int) -> IdList:
    """A dry run's list: the first :data:`ID_CAP` selected request ids, truncated when
    ``matched`` is more."""
    ids = IdList()
    ids.extend([row["request_id"] for row in store.first_rows(engine, selection, ID_CAP)])
    ids.truncated = matched > len(ids.items)
    return ids


def deliveries(n: int, kind: str = "") -> str:
    """``1 delivery``, ``3 failed deliveries``."""
    return f"{n:,} {kind + ' ' if kind else ''}{'delivery' if n == 1 else 'deliveries'}"


def where(selection: store.Selection) -> str:
    """The filters of ``selection`` a person reads, in brackets with a leading space
    (``" (event order_changed, endpoint lab)"``), or nothing when it filters by none of them."""
    parts = []
    if selection.request_id:
        parts.append(f"request id {selection.request_id}")
    if selection.event:
        parts.append(f"event {selection.event}")
    if selection.endpoint:
        parts.append(f"endpoint {selection.endpoint}")
    if selection.patient_keys or selection.encounter_keys:
        parts.append("the patient searched for")
    if selection.since is not None:
        parts.append(f"created since {format_utc(selection.since)}")
    if selection.until is not None:
        parts.append(f"created before {format_utc(selection.until)}")
    return f" ({', '.join(parts)})" if parts else ""
