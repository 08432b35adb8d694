"""The one door every operator action goes through, whoever knocks (the CLI, the console, the
HTTP API): **plan** -> (the front end shows the plan and asks) -> **run** -> **audit**.

An action is an object made from its parsed input (a :class:`Door` subclass). Its
:meth:`~Door.plan` reads only: what the action will touch, how many, and a sentence saying so.
Its :meth:`~Door.run` does the writes and returns a :class:`Outcome`. :meth:`Door.carry_out`
runs a plan and writes the one audit row -- the action's selection, who asked and through which
front end, and the outcome's counts -- so no front end writes an audit row or repeats a rule.

A front end only parses its input into the action, renders :class:`Plan` (asking when it is
its way), calls :meth:`~Door.carry_out` and renders the outcome. A plan's ``count`` lets a
front end that asked earlier see that the count changed before it runs (the console asks again).
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


O = TypeVar("O", bound=Outcome)


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


class Door(ABC, Generic[O]):
    """One operator action: plan it, run it, audit it."""

    action: ClassVar[AuditAction]

    @abstractmethod
    def plan(self, runtime: Runtime) -> Plan:
        """What the action will touch; reads only."""

    @abstractmethod
    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> O:
        """Does the writes the plan describes; audits nothing."""

    def audit_selection(self, plan: Plan, outcome: O) -> Mapping[str, Any]:
        """The audit row's selection (the plan's, unless the run learnt more)."""
        return plan.selection

    def carry_out(
        self, runtime: Runtime, actor: Actor, plan: Plan | None = None, progress: Progress | None = None
    ) -> O:
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
    """Writes one audit row for ``actor`` (for an action that is not a :class:`Door`, such as a
    dry run that is audited too, or a reveal)."""
    via = {"via": actor.via} if actor.via else {}
    audit.record(runtime.engine, action, {**selection, **via}, counts, actor=actor.name)
