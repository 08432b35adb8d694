"""What the bulk operations share: their batch size, a progress callback, and the capped list
of request ids a report carries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

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
