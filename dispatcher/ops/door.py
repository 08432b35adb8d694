"""The one door every operator action goes through, whoever knocks (the CLI, the console, the
HTTP API): **plan** -> (the front end shows the plan and asks) -> **run** -> **audit**.

An action is an object made from its parsed input (a :class:`Door` subclass). Its
:meth:`~Door.plan` reads only: what the action will touch, how many, and a sentence saying so.
Its :meth:`~Door.run` does the writes and returns a :class:`Outcome`. :meth:`Door.carry_out`
runs a plan and writes the one audit row -- the action's selection, who asked and through which
front end, and the outcome's counts -- so no front end writes an audit row or repeats a rule.
:meth:`Door.preview` is the other way out of a plan, for a dry run or a plan with
:meth:`~Door.nothing_to_do`: the report the plan makes, nothing written, audited only where the
door's rule says so (:meth:`~Door.preview_audit`: erasing audits every look at a patient's
deliveries; retention audits a run with nothing to do).

A front end only parses its input into the action, renders :class:`Plan` (asking when it is
its way), calls :meth:`~Door.carry_out` (or :meth:`~Door.preview`) and renders the outcome. A
plan's ``count`` lets a front end that asked earlier see that the count changed before it runs
(the console asks again).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from ..runtime import Runtime
from ..vocabulary import AuditAction
from . import audit
from .bulk import Progress


class Outcome(Protocol):
    """What an action's run returns: at least its counts, as the audit row stores them."""

    def counts(self) -> Mapping[str, Any]: ...


OutcomeT = TypeVar("OutcomeT", bound=Outcome)


@dataclass(frozen=True)
class Actor:
    """Who asks, and through which front end: ``via`` goes into the audit row's selection
    (``None`` for the CLI, whose rows have never carried it)."""

    name: str
    via: str | None = None

    @classmethod
    def cli(cls) -> Actor:
        return cls(audit.os_actor())

    @classmethod
    def console(cls, name: str) -> Actor:
        return cls(name, "console")


@dataclass(frozen=True)
class Plan:
    """What an action will do, read before anything is written.

    ``count``: how many deliveries it touches (``None`` where it touches none, e.g. disabling);
    ``description``: one sentence a person reads before saying yes; ``selection``: what the
    audit row records as the action's input (no PHI); ``notes``: what the person should know
    (deliveries left alone, and why).
    """

    action: AuditAction
    count: int | None
    description: str
    selection: Mapping[str, Any]
    notes: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    """Numbers a front end may show beside the count (e.g. ``erased``, ``held_back``)."""


class Door(ABC, Generic[OutcomeT]):
    """One operator action: plan it, run it, audit it."""

    action: ClassVar[AuditAction]

    @abstractmethod
    def plan(self, runtime: Runtime) -> Plan:
        """What the action will touch; reads only."""

    @abstractmethod
    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> OutcomeT:
        """Does the writes the plan describes; audits nothing."""

    def nothing_to_do(self, plan: Plan) -> bool:
        """Whether running ``plan`` would change nothing, so a front end previews it instead: its
        count is 0 (a door whose count is not the whole of its work says otherwise)."""
        return plan.count == 0

    def previewed(self, runtime: Runtime, plan: Plan, *, dry_run: bool) -> OutcomeT:
        """The report ``plan`` makes with nothing written (``dry_run``: asked for as a dry run,
        rather than having nothing to do); reads only. A door that has no preview raises
        :class:`NotImplementedError`."""
        raise NotImplementedError(f"{type(self).__name__} has no preview")

    def preview_audit(self, plan: Plan, *, dry_run: bool) -> Mapping[str, Any] | None:
        """The selection of the audit row a preview writes; None (most doors): not audited."""
        return None

    def preview(self, runtime: Runtime, actor: Actor, plan: Plan, *, dry_run: bool = True) -> OutcomeT:
        """The plan as a report, changing nothing (a dry run, or nothing to do); audited for
        ``actor`` only where the door's rule says so (:meth:`preview_audit`)."""
        report = self.previewed(runtime, plan, dry_run=dry_run)
        selection = self.preview_audit(plan, dry_run=dry_run)
        if selection is not None:
            record(runtime, actor, plan.action, selection, report.counts())
        return report

    def audit_selection(self, plan: Plan, outcome: OutcomeT) -> Mapping[str, Any]:
        """The audit row's selection (the plan's, unless the run learnt more)."""
        return plan.selection

    def carry_out(
        self, runtime: Runtime, actor: Actor, plan: Plan | None = None, progress: Progress | None = None
    ) -> OutcomeT:
        """Runs ``plan`` (a fresh one when not given) and writes its one audit row."""
        plan = plan if plan is not None else self.plan(runtime)
        outcome = self.run(runtime, plan, progress)
        record(runtime, actor, plan.action, self.audit_selection(plan, outcome), outcome.counts())
        return outcome


def record(
    runtime: Runtime,
    actor: Actor,
    action: AuditAction,
    selection: Mapping[str, Any],
    counts: Mapping[str, Any],
) -> None:
    """Writes one audit row for ``actor`` (a door's run or audited preview, or an action that is
    not a :class:`Door`, such as a reveal)."""
    via = {"via": actor.via} if actor.via else {}
    audit.record(runtime.engine, action, {**selection, **via}, counts, actor=actor.name)
