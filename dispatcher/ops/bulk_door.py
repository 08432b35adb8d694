"""A door over a selection of deliveries (:class:`BulkDoor`: ``retry --failed``, ``replay``):
its plan counts the selection, which the audit row records, and its preview
(:meth:`~dispatcher.ops.door.Door.preview`, not audited) reports the count and the first ids."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from .. import store
from ..runtime import Runtime
from . import audit
from .bulk import IdList, first_ids
from .door import Door, Outcome, Plan


class BulkReport(Outcome, Protocol):
    """What a bulk door's run and preview return: counts for the audit row, and the document
    ``--json`` prints."""

    def as_dict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=BulkReport)


class BulkDoor(Door[R]):
    """A :class:`~dispatcher.ops.door.Door` whose plan counts the deliveries of ``selection``."""

    selection: store.Selection

    def planned(
        self,
        count: int,
        description: str,
        notes: tuple[str, ...] = (),
        details: Mapping[str, Any] | None = None,
    ) -> Plan:
        """A plan of ``count`` deliveries of :attr:`selection`, which the audit row records."""
        selection = audit.described(self.selection)
        return Plan(self.action, count, description, selection, notes, details or {})

    @abstractmethod
    def report(self, matched: int, ids: IdList, *, dry_run: bool) -> R:
        """A preview's report: ``matched`` deliveries, the first of them ``ids``."""

    def previewed(self, runtime: Runtime, plan: Plan, *, dry_run: bool) -> R:
        """The plan's count and the first ids of the selection; reads only."""
        matched = plan.count or 0
        return self.report(matched, first_ids(runtime.engine, self.selection, matched), dry_run=dry_run)
