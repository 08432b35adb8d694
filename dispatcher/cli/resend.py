"""``dispatcher retry`` and ``dispatcher replay``: re-send from the transaction log.

The bulk forms count first, ask before changing anything (unless ``--yes``), show a progress
bar on stderr while they work (on a terminal), and stream the rows in batches (see
:mod:`dispatcher.ops.resend` and :mod:`dispatcher.ops.replay`). ``--dry-run`` counts and lists,
and changes nothing.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from ..times import format_utc
from ..vocabulary import DeliveryStatus
from .output import confirm, deliveries, print_table, progress, say, to_json
from .params import EVENT, MOMENT, check_range

if TYPE_CHECKING:
    from .. import store
    from ..ops.replay import ReplayReport

SHOWN = 50
"""Rows a dry run's table shows (``--json`` lists up to ops.bulk.ID_CAP ids)."""


def _match(n: int) -> str:
    return "matches" if n == 1 else "match"


def _describe(selection: store.Selection) -> str:
    parts = []
    if selection.event:
        parts.append(f"event {selection.event}")
    if selection.endpoint:
        parts.append(f"endpoint {selection.endpoint}")
    if selection.since is not None:
        parts.append(f"created since {format_utc(selection.since)}")
    if selection.until is not None:
        parts.append(f"created before {format_utc(selection.until)}")
    return f" ({', '.join(parts)})" if parts else ""


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


@click.command("retry")
@click.argument("request_ids", nargs=-1, metavar="[REQUEST_ID]...")
@click.option(
    "--failed", "all_failed", is_flag=True, help="Re-queue every failed delivery matching the filters."
)
@click.option("--event", type=EVENT, help="With --failed: only this event.")
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
    check_range(since, until)
    from .. import store

    _retry_failed(
        store.Selection(
            statuses=(DeliveryStatus.FAILED,),
            event=event,
            endpoint=endpoint,
            since=since,
            until=until,
            with_payload=True,
        ),
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
    )


def _retry_ids(request_ids: tuple[str, ...]) -> None:
    from .. import store
    from ..ops import audit, resend
    from ..runtime import get_runtime

    rt = get_runtime()
    problems = 0
    for request_id in request_ids:
        result, status = resend.retry_one(rt, request_id)
        if result == resend.MISSING:
            click.echo(f"{request_id}: no such delivery", err=True)
            problems += 1
        elif result == resend.ERASED:
            click.echo(
                f"{request_id}: cannot be re-sent, its payload was erased (retention or log erase)", err=True
            )
            problems += 1
        elif result == resend.ENDPOINT_DISABLED:
            endpoint = (store.get_delivery(rt.engine, request_id) or {}).get("endpoint")
            click.echo(
                f"{request_id}: not re-queued, endpoint {endpoint} is disabled "
                f"(`dispatcher endpoints enable {endpoint}` re-sends what it held back)",
                err=True,
            )
            problems += 1
        elif result == resend.NOT_FAILED:
            click.echo(
                f"{request_id}: left alone, its status is {status} (only failed deliveries are re-queued)",
                err=True,
            )
            problems += 1
        else:
            click.echo(f"{request_id}: re-queued")
    audit.record(
        rt.engine,
        "retry",
        {"request_ids": list(request_ids)[:1000]},
        {"requeued": len(request_ids) - problems, "left_alone": problems},
    )
    if problems:
        sys.exit(1)


def _retry_failed(selection: store.Selection, *, dry_run: bool, yes: bool, as_json: bool) -> None:
    from .. import store
    from ..ops import audit, resend
    from ..runtime import get_runtime

    rt = get_runtime()
    matched = store.count(rt.engine, selection)
    erased = store.count(rt.engine, replace(selection, with_payload=False)) - matched
    if erased and not as_json:
        click.echo(
            f"{deliveries(erased, 'failed')} whose payload was erased cannot be re-sent; left alone", err=True
        )
    what = deliveries(matched, "failed")
    if matched == 0 or dry_run:
        if as_json:
            report = resend.retry_failed(rt, selection, matched=matched, dry_run=True)
            click.echo(to_json({**report.as_dict(), "dry_run": dry_run}))
        elif matched == 0:
            click.echo(f"no failed deliveries match{_describe(selection)}; nothing to re-queue")
        else:
            click.echo(f"{what} {_match(matched)}{_describe(selection)}; dry run, nothing was re-queued")
            _show_rows(store.first_rows(rt.engine, selection, SHOWN), matched)
        return
    say(f"{what} {_match(matched)}{_describe(selection)}", as_json)
    if not yes:
        confirm(
            f"Re-queue {deliveries(matched)} "
            "(same request ids, each with a fresh attempt budget: its endpoint's max_attempts)?"
        )
    with progress("re-queuing", matched) as advance:
        report = resend.retry_failed(rt, selection, matched=matched, progress=advance)
    audit.record(
        rt.engine,
        "retry",
        audit.described(selection),
        {
            "matched": matched,
            "requeued": report.requeued,
            "awaiting_reconcile": report.awaiting_reconcile,
            "skipped_endpoint_disabled": report.skipped_endpoint_disabled,
        },
    )
    if as_json:
        click.echo(to_json(report.as_dict()))
    else:
        click.echo(f"re-queued {report.requeued:,} of {matched:,}")
    if report.skipped_endpoint_disabled:
        names = ", ".join(sorted(report.disabled_endpoints))
        click.echo(
            f"{deliveries(report.skipped_endpoint_disabled)} left failed: endpoint disabled ({names}); "
            "`dispatcher endpoints enable NAME` re-sends what it held back",
            err=True,
        )
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
@click.option("--event", type=EVENT, help="Only this event.")
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
    from .. import store
    from ..ops import audit, replay
    from ..runtime import get_runtime

    rt = get_runtime()
    rt.settings.require_endpoint(endpoint)
    started = datetime.now(UTC)
    until = min(until, started) if until is not None else started
    check_range(since, until)
    selection = store.Selection(event=event, endpoint=endpoint, since=since, until=until)
    matched = store.count(rt.engine, selection)
    what = deliveries(matched)
    if matched == 0 or dry_run:
        if as_json:
            report = replay.replay(rt, selection, endpoint, matched=matched, dry_run=True)
            click.echo(to_json({**report.as_dict(), "dry_run": dry_run}))
        elif matched == 0:
            click.echo(f"no deliveries match{_describe(selection)}; nothing to replay")
        else:
            click.echo(f"{what} {_match(matched)}{_describe(selection)}; dry run, nothing was sent")
            _show_rows(store.first_rows(rt.engine, selection, SHOWN), matched)
        return
    say(f"{what} {_match(matched)}{_describe(selection)}", as_json)
    if not yes:
        confirm(f"Send {what} again to {endpoint}, as new deliveries with new request ids?")
    with progress("replaying", matched) as advance:
        report = replay.replay(rt, selection, endpoint, matched=matched, progress=advance)
    audit.record(
        rt.engine,
        "replay",
        audit.described(selection),
        {
            "matched": matched,
            "replayed": report.replayed,
            "skipped": report.skipped,
            "held_back": report.held_back,
        },
    )
    _say_replayed(report, matched, endpoint, as_json)
    if report.skipped:
        sys.exit(1)


def _say_replayed(report: ReplayReport, matched: int, endpoint: str, as_json: bool) -> None:
    """What a replay did: the report (or a line), the replays held back for a disabled endpoint,
    and the originals that could not be replayed (on stderr)."""
    if as_json:
        click.echo(to_json(report.as_dict()))
    else:
        click.echo(f"replayed {report.replayed:,} of {matched:,} to {endpoint} as new deliveries")
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
