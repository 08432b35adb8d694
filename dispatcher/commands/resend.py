"""``dispatcher retry``, ``dispatcher replay`` and ``dispatcher prune``: re-send and clean up.

The bulk forms count first, ask before changing anything (unless ``--yes``), show a progress
bar on stderr while they work (on a terminal), and stream the rows in batches: see
:mod:`dispatcher.operations`. ``--dry-run`` counts and lists, and changes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .. import events, operations, store
from ..cli import MOMENT, fail, print_table, runtime, to_json
from ..errors import UnknownEndpoint

SHOWN = 50
"""Rows a dry run's table shows (``--json`` lists up to operations.ID_CAP ids)."""


# --- shared helpers --------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _deliveries(n: int, kind: str = "") -> str:
    return f"{n:,} {kind + ' ' if kind else ''}{'delivery' if n == 1 else 'deliveries'}"


def _match(n: int) -> str:
    return "matches" if n == 1 else "match"


def _when(moment: datetime) -> str:
    return events.format_utc(moment)


def _describe(selection: operations.Selection) -> str:
    parts = []
    if selection.event:
        parts.append(f"event {selection.event}")
    if selection.endpoint:
        parts.append(f"endpoint {selection.endpoint}")
    if selection.since is not None:
        parts.append(f"created since {_when(selection.since)}")
    if selection.until is not None:
        parts.append(f"created before {_when(selection.until)}")
    return f" ({', '.join(parts)})" if parts else ""


def _say(message: str, as_json: bool) -> None:
    """A line for the operator: on stdout, or on stderr when stdout carries the JSON."""
    click.echo(message, err=as_json)


def _confirm(question: str) -> None:
    """Asks on stderr; anything but yes (or no terminal to ask on) stops with nothing changed."""
    try:
        agreed = click.confirm(question, default=False, err=True)
    except click.exceptions.Abort:
        agreed = False
        click.echo("", err=True)
    if not agreed:
        fail("aborted; nothing was changed")


def _check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise click.UsageError(f"--since ({_when(since)}) must be before --until ({_when(until)})")


@contextmanager
def _progress(description: str, total: int) -> Iterator[operations.Progress]:
    """A rich progress bar on stderr, drawn only when stderr is a terminal."""
    err = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


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


# --- retry -----------------------------------------------------------------------------------


@click.command("retry")
@click.argument("request_ids", nargs=-1, metavar="[REQUEST_ID]...")
@click.option(
    "--failed", "all_failed", is_flag=True, help="Re-queue every failed delivery matching the filters."
)
@click.option("--event", type=click.Choice(events.EVENT_NAMES), help="With --failed: only this event.")
@click.option("--endpoint", help="With --failed: only deliveries to this endpoint.")
@click.option("--since", type=MOMENT, help="With --failed: created at or after (ISO 8601 or 30m, 2h, 7d).")
@click.option("--until", type=MOMENT, help="With --failed: created before (ISO 8601 or an age).")
@click.option("--dry-run", is_flag=True, help="With --failed: count and list, change nothing.")
@click.option("--yes", "-y", is_flag=True, help="With --failed: do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="With --failed: print a JSON report.")
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
        used = [
            name
            for name, value in (
                ("--event", event),
                ("--endpoint", endpoint),
                ("--since", since),
                ("--until", until),
                ("--dry-run", dry_run),
                ("--yes", yes),
                ("--json", as_json),
            )
            if value
        ]
        if used:
            raise click.UsageError(f"{', '.join(used)} only apply with --failed, not with REQUEST_IDs")
        _retry_ids(request_ids)
        return
    _check_range(since, until)
    _retry_failed(
        operations.Selection(
            statuses=(store.FAILED,), event=event, endpoint=endpoint, since=since, until=until
        ),
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
    )


def _retry_ids(request_ids: tuple[str, ...]) -> None:
    rt = runtime()
    problems = 0
    for request_id in request_ids:
        result, status = operations.retry_one(rt, request_id)
        if result == operations.MISSING:
            click.echo(f"{request_id}: no such delivery", err=True)
            problems += 1
        elif result == operations.NOT_FAILED:
            click.echo(
                f"{request_id}: left alone, its status is {status} (only failed deliveries are re-queued)",
                err=True,
            )
            problems += 1
        else:
            click.echo(f"{request_id}: re-queued")
    if problems:
        sys.exit(1)


def _retry_failed(selection: operations.Selection, *, dry_run: bool, yes: bool, as_json: bool) -> None:
    rt = runtime()
    matched = operations.count(rt.engine, selection)
    what = _deliveries(matched, "failed")
    if matched == 0 or dry_run:
        if as_json:
            report = operations.retry_failed(rt, selection, matched=matched, dry_run=True)
            click.echo(to_json({**report.as_dict(), "dry_run": dry_run}))
        elif matched == 0:
            click.echo(f"no failed deliveries match{_describe(selection)}; nothing to re-queue")
        else:
            click.echo(f"{what} {_match(matched)}{_describe(selection)}; dry run, nothing was re-queued")
            _show_rows(operations.first_rows(rt.engine, selection, SHOWN), matched)
        return
    _say(f"{what} {_match(matched)}{_describe(selection)}", as_json)
    if not yes:
        _confirm(
            f"Re-queue {_deliveries(matched)} "
            "(same request ids, each with a fresh attempt budget: its endpoint's max_attempts)?"
        )
    with _progress("re-queuing", matched) as progress:
        report = operations.retry_failed(rt, selection, matched=matched, progress=progress)
    if as_json:
        click.echo(to_json(report.as_dict()))
    else:
        click.echo(f"re-queued {report.requeued:,} of {matched:,}")
    if report.redis_error:
        click.echo(
            f"warning: Redis refused ({report.redis_error}); {report.awaiting_reconcile:,} re-opened "
            "deliveries are stored as queued and reconcile will queue them",
            err=True,
        )


# --- replay ----------------------------------------------------------------------------------


@click.command("replay")
@click.option(
    "--since", type=MOMENT, required=True, help="Created at or after: ISO 8601 or an age (30m, 2h, 7d)."
)
@click.option("--until", type=MOMENT, help="Created before: ISO 8601 or an age (default: now).")
@click.option("--event", type=click.Choice(events.EVENT_NAMES), help="Only this event.")
@click.option("--endpoint", required=True, help="Replay the deliveries made to this endpoint, to it.")
@click.option("--dry-run", is_flag=True, help="Count and list, send nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
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
    rt = runtime()
    try:
        operations.check_endpoint(rt, endpoint)
    except UnknownEndpoint as exc:
        fail(str(exc))
    started = datetime.now(UTC)
    until = min(until, started) if until is not None else started
    _check_range(since, until)
    selection = operations.Selection(event=event, endpoint=endpoint, since=since, until=until)
    matched = operations.count(rt.engine, selection)
    what = _deliveries(matched)
    if matched == 0 or dry_run:
        if as_json:
            report = operations.replay(rt, selection, endpoint, matched=matched, dry_run=True)
            click.echo(to_json({**report.as_dict(), "dry_run": dry_run}))
        elif matched == 0:
            click.echo(f"no deliveries match{_describe(selection)}; nothing to replay")
        else:
            click.echo(f"{what} {_match(matched)}{_describe(selection)}; dry run, nothing was sent")
            _show_rows(operations.first_rows(rt.engine, selection, SHOWN), matched)
        return
    _say(f"{what} {_match(matched)}{_describe(selection)}", as_json)
    if not yes:
        _confirm(f"Send {what} again to {endpoint}, as new deliveries with new request ids?")
    with _progress("replaying", matched) as progress:
        report = operations.replay(rt, selection, endpoint, matched=matched, progress=progress)
    if as_json:
        click.echo(to_json(report.as_dict()))
    else:
        click.echo(f"replayed {report.replayed:,} of {matched:,} to {endpoint} as new deliveries")
    for item in report.skipped_items.items[:SHOWN]:
        click.echo(f"{item['request_id']}: not replayed: {item['reason']}", err=True)
    if report.skipped > SHOWN:
        click.echo(f"… and {report.skipped - SHOWN:,} more not replayed", err=True)
    if report.skipped:
        sys.exit(1)


# --- prune -----------------------------------------------------------------------------------


@click.command("prune")
@click.option(
    "--older-than",
    type=MOMENT,
    required=True,
    help="Last updated more than this long ago (30d, 12h, 90m) or before an ISO 8601 time.",
)
@click.option(
    "--status",
    type=click.Choice(store.FINAL_STATUSES),
    help="Only deliveries in this final status (default: delivered and failed).",
)
@click.option("--dry-run", is_flag=True, help="Count, delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def prune_command(older_than: datetime, status: str | None, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Delete old deliveries in a final state (delivered, failed) and their attempt rows.

    Queued, retrying and in-flight deliveries are never touched, however old.
    """
    rt = runtime()
    selection = operations.prune_selection([status] if status else store.FINAL_STATUSES, older_than)
    counted = operations.count_by_status(rt.engine, selection)
    by_status = {s: counted.get(s, 0) for s in selection.statuses}
    matched = sum(by_status.values())
    detail = ", ".join(f"{s}: {n:,}" for s, n in by_status.items())
    what = f"{_deliveries(matched)} ({detail}) last updated before {_when(older_than)}"
    if matched == 0 or dry_run:
        report = operations.prune(rt.engine, selection, matched_by_status=by_status, dry_run=True)
        if as_json:
            click.echo(to_json({**report.as_dict(), "dry_run": dry_run}))
        elif matched == 0:
            click.echo(
                f"no deliveries ({', '.join(selection.statuses)}) last updated before {_when(older_than)}"
            )
        else:
            click.echo(f"{what}; dry run, nothing was deleted")
        return
    _say(what, as_json)
    if not yes:
        _confirm("Delete them and their attempt rows?")
    with _progress("pruning", matched) as progress:
        report = operations.prune(rt.engine, selection, matched_by_status=by_status, progress=progress)
    if as_json:
        click.echo(to_json(report.as_dict()))
    else:
        click.echo(
            f"deleted {_deliveries(report.deleted)} and {_plural(report.attempts_deleted, 'attempt row')}"
        )


def register(cli: click.Group) -> None:
    cli.add_command(retry_command)
    cli.add_command(replay_command)
    cli.add_command(prune_command)
