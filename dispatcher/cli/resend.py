"""``dispatcher retry`` and ``dispatcher replay``: re-send from the transaction log.

The bulk forms count first, ask before changing anything (unless ``--yes``), show a progress
bar on stderr while they work (on a terminal), and stream the rows in batches (see
:mod:`dispatcher.ops.resend` and :mod:`dispatcher.ops.replay`). ``--dry-run`` counts and lists,
and changes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import click

from .doors import Asked, Text, run_door
from .output import deliveries, print_table
from .params import EVENT, MOMENT, check_range

if TYPE_CHECKING:
    from .. import store
    from ..ops.bulk_door import BulkDoor, BulkReport
    from ..ops.door import Plan
    from ..ops.replay import ReplayReport
    from ..ops.resend import RetryReport, Verdict
    from ..runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R", bound="BulkReport")

SHOWN = 50
"""Rows a dry run's table shows (``--json`` lists up to ops.bulk.ID_CAP ids)."""


def _match(n: int) -> str:
    return "matches" if n == 1 else "match"


def _matching(n: int, kind: str, selection: store.Selection) -> str:
    """``3 failed deliveries match (event order_changed)``."""
    from ..ops.bulk import where

    return f"{deliveries(n, kind)} {_match(n)}{where(selection)}"


def _show_rows(rows: list[dict[str, Any]], matched: int) -> None:
    shown = rows[:SHOWN]
    if not shown:
        return
    print_table(
        ("request_id", "event", "endpoint", "status", "attempts", "created_at (UTC)", "updated_at (UTC)"),
        [
            [
                r["request_id"],
                r["event"],
                r["endpoint"],
                r["status"],
                r["attempts"],
                r["created_at"],
                r["updated_at"],
            ]
            for r in shown
        ],
    )
    if matched > len(shown):
        click.echo(f"… and {matched - len(shown):,} more (dispatcher log list shows them all)")


def _asking(when: str, dry_run: str) -> Callable[[F], F]:
    """The options of a command that asks first: ``--dry-run`` (``dry_run`` its help), ``--yes``
    and ``--json``; ``when`` begins each help (``"With --failed: "``)."""

    def helped(text: str) -> str:
        return f"{when}{text}" if when else text[0].upper() + text[1:]

    def options(command: F) -> F:
        for option in reversed(
            (
                click.option("--dry-run", is_flag=True, help=helped(dry_run)),
                click.option("--yes", "-y", is_flag=True, help=helped("do not ask for confirmation.")),
                click.option("--json", "as_json", is_flag=True, help=helped("print a JSON report.")),
            )
        ):
            command = option(command)
        return command

    return options


@click.command("retry")
@click.argument("request_ids", nargs=-1, metavar="[REQUEST_ID]...")
@click.option(
    "--failed", "all_failed", is_flag=True, help="Re-queue every failed delivery matching the filters."
)
@click.option("--event", type=EVENT, help="With --failed: only this event.")
@click.option("--endpoint", help="With --failed: only deliveries to this endpoint.")
@click.option("--since", type=MOMENT, help="With --failed: created at or after (ISO 8601 or 30m, 2h, 7d).")
@click.option("--until", type=MOMENT, help="With --failed: created before (ISO 8601 or an age).")
@_asking("With --failed: ", "count and list, change nothing.")
def retry_command(
    request_ids: tuple[str, ...],
    all_failed: bool,
    event: str | None,
    endpoint: str | None,
    since: datetime | None,
    until: datetime | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Re-queue failed deliveries: same request_id, `retry: true`, a fresh attempt budget.

    Give REQUEST_IDs, or --failed to re-queue every failed delivery matching --event,
    --endpoint, --since and --until (all of them without filters).
    """
    if request_ids and all_failed:
        raise click.UsageError("give REQUEST_IDs or --failed, not both")
    if not request_ids and not all_failed:
        raise click.UsageError(
            "give one or more REQUEST_IDs, or --failed to re-queue every matching failed delivery"
        )
    if request_ids:
        _only_with_failed(
            event=event, endpoint=endpoint, since=since, until=until, dry_run=dry_run, yes=yes, json=as_json
        )
        _retry_ids(request_ids)
        return
    check_range(since, until)
    from .. import store

    selection = store.Selection(event=event, endpoint=endpoint, since=since, until=until)
    _retry_failed(selection, dry_run=dry_run, yes=yes, as_json=as_json)


def _only_with_failed(**given: object) -> None:
    """A usage error naming the options given that only apply with ``--failed``."""
    used = [f"--{name.replace('_', '-')}" for name, value in given.items() if value]
    if used:
        raise click.UsageError(f"{', '.join(used)} only apply with --failed, not with REQUEST_IDs")


def _retry_ids(request_ids: tuple[str, ...]) -> None:
    from ..ops import resend
    from ..ops.door import Actor
    from ..runtime import get_runtime

    outcome = resend.Retry(request_ids).carry_out(get_runtime(), Actor.cli())
    for verdict in outcome.verdicts:
        if verdict.result == resend.REQUEUED:
            click.echo(f"{verdict.request_id}: re-queued")
        else:
            click.echo(f"{verdict.request_id}: {_left_alone(verdict)}", err=True)
    if outcome.left_alone:
        sys.exit(1)


def _left_alone(verdict: Verdict) -> str:
    """Why ``retry ID`` left a delivery alone, and what to do about it."""
    from ..ops import resend

    endpoint = verdict.endpoint
    return {
        resend.MISSING: "no such delivery",
        resend.ERASED: "cannot be re-sent, its payload was erased (retention or log erase)",
        resend.ENDPOINT_DISABLED: f"not re-queued, endpoint {endpoint} is disabled "
        f"(`dispatcher endpoints enable {endpoint}` re-sends what it held back)",
        resend.NOT_FAILED: f"left alone, its status is {verdict.status} (only failed deliveries are re-queued)",
    }[verdict.result]


def _retry_failed(selection: store.Selection, *, dry_run: bool, yes: bool, as_json: bool) -> None:
    from ..ops import resend
    from ..runtime import get_runtime

    rt = get_runtime()
    door = resend.RetryFailed(selection)
    report = _run_bulk(
        rt,
        door,
        door.plan(rt),
        Asked(dry_run, yes, as_json),
        "failed",
        RETRY_WORDS,
        lambda report: f"re-queued {report.requeued:,} of {report.matched:,}",
    )
    _warn_retried(report)


def _warn_retried(report: RetryReport) -> None:
    """What ``retry --failed`` left, and why (on stderr)."""
    warnings = []
    if report.skipped_endpoint_disabled:
        warnings.append(
            f"{deliveries(report.skipped_endpoint_disabled)} left failed: endpoint disabled "
            f"({', '.join(sorted(report.disabled_endpoints))}); "
            "`dispatcher endpoints enable NAME` re-sends what it held back"
        )
    if report.redis_error:
        warnings.append(
            f"warning: Redis refused ({report.redis_error}); {report.awaiting_reconcile:,} re-opened "
            "deliveries are stored as queued and reconcile will queue them"
        )
    for warning in warnings:
        click.echo(warning, err=True)


class Words(NamedTuple):
    """What a bulk command says it does: ``re-queue`` (nothing to), ``re-queued`` (nothing was),
    ``re-queuing`` (its progress bar)."""

    do: str
    done: str
    doing: str


RETRY_WORDS = Words("re-queue", "re-queued", "re-queuing")
REPLAY_WORDS = Words("replay", "sent", "replaying")


def _run_bulk(
    rt: Runtime, door: BulkDoor[R], plan: Plan, asked: Asked, kind: str, words: Words, done: Text[R]
) -> R:
    """The rest of a bulk command once planned (:func:`~dispatcher.cli.doors.run_door`): a dry
    run, or nothing to do, says what matches; otherwise it says how many match and asks with
    the plan's description."""
    count = plan.count or 0
    return run_door(
        rt,
        door,
        plan,
        asked,
        bar=words.doing,
        question=f"{plan.description}?",
        heading=_matching(count, kind, door.selection),
        previewed=lambda _: _dry_run(rt, door.selection, count, kind, words),
        done=done,
    )


def _dry_run(rt: Runtime, selection: store.Selection, count: int, kind: str, words: Words) -> str | None:
    """A bulk preview's text: that nothing matches, or how many do and the first rows (printed
    here)."""
    from .. import store
    from ..ops.bulk import where

    if count == 0:
        return f"no {kind + ' ' if kind else ''}deliveries match{where(selection)}; nothing to {words.do}"
    click.echo(f"{_matching(count, kind, selection)}; dry run, nothing was {words.done}")
    _show_rows(store.first_rows(rt.engine, selection, SHOWN), count)
    return None


# --- replay ----------------------------------------------------------------------------------


@click.command("replay")
@click.option(
    "--since", type=MOMENT, required=True, help="Created at or after: ISO 8601 or an age (30m, 2h, 7d)."
)
@click.option("--until", type=MOMENT, help="Created before: ISO 8601 or an age (default: now).")
@click.option("--event", type=EVENT, help="Only this event.")
@click.option("--endpoint", required=True, help="Replay the deliveries made to this endpoint, to it.")
@_asking("", "count and list, send nothing.")
def replay_command(
    since: datetime,
    until: datetime | None,
    event: str | None,
    endpoint: str,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Re-send the deliveries made to an endpoint in a time range, whatever their status.

    Each becomes a new delivery to the same endpoint, with a new request id, the same event,
    data and dispatched_by, and `replay_of` naming the original.
    """
    from .. import store
    from ..ops import replay
    from ..runtime import get_runtime

    rt = get_runtime()
    door = replay.Replay(store.Selection(event=event, since=since, until=until), endpoint)
    plan = door.plan(rt)  # an unknown endpoint is refused first
    check_range(since, door.until)
    report = _run_bulk(
        rt,
        door,
        plan,
        Asked(dry_run, yes, as_json),
        "",
        REPLAY_WORDS,
        lambda report: f"replayed {report.replayed:,} of {report.matched:,} to {endpoint} as new deliveries",
    )
    _warn_replayed(report, endpoint)
    if report.skipped:
        sys.exit(1)


def _warn_replayed(report: ReplayReport, endpoint: str) -> None:
    """The replays held back for a disabled endpoint, and the originals that could not be
    replayed (on stderr)."""
    if report.held_back:
        click.echo(
            f"{deliveries(report.held_back)} held back, stored failed (endpoint_disabled): endpoint "
            f"{endpoint} is disabled; `dispatcher endpoints enable {endpoint}` re-sends them",
            err=True,
        )
    for item in report.skipped_items.items[:SHOWN]:
        click.echo(f"{item['request_id']}: not replayed: {item['reason']}", err=True)
    if report.skipped > SHOWN:
        click.echo(f"… and {report.skipped - SHOWN:,} more not replayed", err=True)
