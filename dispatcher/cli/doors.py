"""Running an ``ops`` door (:mod:`dispatcher.ops.door`) from the command line, one way for every
command that has one (retry --failed, replay, prune, log erase, retention run, storage).

The command parses its options into the door and makes the plan; :func:`run_door` does the
rest: a dry run, or a plan with nothing to do, is previewed (the door says whether that is
audited); otherwise the plan is said, the person is asked (unless ``--yes``), and the door is
carried out under a progress bar on stderr, audited as the OS user. Either report is printed
as its ``--json`` document or as the command's text; the command then adds what it warns
about on stderr, and its exit code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

import click

from .output import Progress, confirm, progress, say, to_json

if TYPE_CHECKING:
    from ..ops.door import Door, Outcome, Plan
    from ..runtime import Runtime


class Report(Protocol):
    """What a door's run and preview return: counts for the audit row, the ``--json`` document."""

    def counts(self) -> Mapping[str, Any]: ...

    def as_dict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Report)
OutcomeT = TypeVar("OutcomeT", bound="Outcome")

Text = Callable[[R], str | None]
"""A report's text: the lines to print, or None when it printed its own (a table)."""


class Asked(NamedTuple):
    """The options of a command that asks first (False where a command has no such option)."""

    dry_run: bool = False
    yes: bool = False
    as_json: bool = False


def run_door(
    runtime: Runtime,
    door: Door[R],
    plan: Plan,
    asked: Asked,
    *,
    bar: str,
    previewed: Text[R],
    done: Text[R],
    question: str | None = None,
    heading: str | None = None,
) -> R:
    """Previews ``plan`` or carries it out, and prints the report: its ``--json`` document, or
    the text ``previewed`` or ``done`` makes of it.

    The plan's notes go to stderr first (not under ``--json``). Before running, ``heading``
    (the plan's description unless given) is said -- on stderr under ``--json`` -- and
    ``question`` asked unless ``--yes`` (None: not asked); ``bar`` labels the progress bar."""
    from ..ops.door import Actor

    for note in plan.notes if not asked.as_json else ():
        click.echo(note, err=True)
    if asked.dry_run or door.nothing_to_do(plan):
        report, text = door.preview(runtime, Actor.cli(), plan, dry_run=asked.dry_run), previewed
    else:
        say(plan.description if heading is None else heading, asked.as_json)
        if question is not None and not asked.yes:
            confirm(question)
        report, text = carried_out(runtime, door, plan, bar), done
    if asked.as_json:
        click.echo(to_json(report.as_dict()))
    elif (lines := text(report)) is not None:
        click.echo(lines)
    return report


def carried_out(runtime: Runtime, door: Door[OutcomeT], plan: Plan, bar: str | None) -> OutcomeT:
    """Carries ``plan`` out, audited as the OS user, under a progress bar on stderr labelled
    ``bar`` (None: no bar)."""
    from ..ops.door import Actor

    shown: AbstractContextManager[Progress | None] = (
        progress(bar, plan.count or 0) if bar is not None else nullcontext()
    )
    with shown as advance:
        return door.carry_out(runtime, Actor.cli(), plan, advance)


def preview_line(plan: Plan, dry_run: bool, changed: str = "changed", idle: str = "nothing to do") -> str:
    """A preview's first line: the plan's description, then ``; dry run, nothing was changed``
    (``changed`` the verb) or, with nothing to do, ``; nothing to do`` (``idle``)."""
    return f"{plan.description}; {f'dry run, nothing was {changed}' if dry_run else idle}"
