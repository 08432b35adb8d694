"""``dispatcher log stats`` and ``dispatcher log export``: reports over the transaction log."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..times import format_utc, utcnow
from ..vocabulary import ExportRows
from .output import Progress, print_table, to_json
from .params import EVENT, MOMENT

if TYPE_CHECKING:
    from ..runtime import Runtime
    from ..store import GroupStats, Selection, Stats

STATS_COLUMNS = (
    "deliveries",
    "delivered",
    "failed",
    "pending",
    "retrying",
    "success",
    "attempts/delivery",
    "p50 ms",
    "p95 ms",
)


def stats_row(name: str, group: GroupStats) -> list[Any]:
    return [
        name,
        group.deliveries,
        group.delivered,
        group.failed,
        group.pending,
        group.retrying,
        None if group.success_rate is None else f"{group.success_rate * 100:.1f}%",
        None if group.attempts_per_delivery is None else f"{group.attempts_per_delivery:.2f}",
        group.p50_ms,
        group.p95_ms,
    ]


def print_stats(stats: Stats, by: tuple[str, ...] = ("event", "endpoint"), window: str = "") -> None:
    """The ``log stats`` tables (also the demo's)."""
    total = stats_row("(total)", stats.total)
    groups = {"event": stats.by_event, "endpoint": stats.by_endpoint}
    for key in by:
        print_table(
            (key, *STATS_COLUMNS),
            [*(stats_row(name, group) for name, group in groups[key]), total],
            title=f"by {key}{': ' + window if window else ''}",
        )


@click.command("stats")
@click.option(
    "--since",
    type=MOMENT,
    default="24h",
    show_default=True,
    help="Deliveries created at or after: ISO 8601 or an age (30m, 2h, 7d).",
)
@click.option("--until", type=MOMENT, help="Deliveries created before: ISO 8601 or an age (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def log_stats(since: datetime, until: datetime | None, as_json: bool) -> None:
    """Delivery statistics per event and per endpoint, for deliveries created in [--since, --until).

    pending = queued + in_flight + retrying (retrying is shown on its own too); success =
    delivered / (delivered + failed); attempts/delivery = mean attempts started per delivery;
    p50/p95 = nearest-rank percentiles of attempt durations (interrupted attempts left out).
    """
    from .. import store
    from ..runtime import get_runtime

    if until is None:
        until = utcnow()
    if since >= until:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    stats = store.delivery_stats(get_runtime().engine, since=since, until=until)
    if as_json:
        click.echo(to_json(stats.as_dict()))
        return
    print_stats(stats, window=f"deliveries created {format_utc(since)} .. {format_utc(until)} (UTC)")


@click.command("export")
@click.option("--since", type=MOMENT, help="Rows created at or after: ISO 8601 or an age (30m, 2h, 7d).")
@click.option("--until", type=MOMENT, help="Rows created before: ISO 8601 or an age.")
@click.option("--event", type=EVENT, help="Only this event.")
@click.option("--endpoint", help="Only this endpoint.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="JSON Lines (one object per line) or CSV with a header row.",
)
@click.option(
    "--rows",
    type=click.Choice([kind.value for kind in ExportRows]),
    default=ExportRows.ATTEMPTS.value,
    show_default=True,
    help="One row per attempt, or one per delivery.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE (replaced when complete) instead of stdout; shows progress on stderr.",
)
def log_export(
    since: datetime | None,
    until: datetime | None,
    event: str | None,
    endpoint: str | None,
    fmt: str,
    rows: str,
    output: Path | None,
) -> None:
    """Stream log rows as JSON Lines or CSV, oldest first, however large the table.

    Attempt rows carry the request headers and payload as sent (the key already redacted).
    Times are UTC, YYYY-MM-DDTHH:MM:SSZ.
    """
    from .. import store
    from ..ops.door import Actor
    from ..ops.export import Export
    from ..runtime import get_runtime

    runtime = get_runtime()
    selection = store.Selection(event=event, endpoint=endpoint, since=since, until=until)
    if output is not None:
        _export_to_file(runtime, selection, rows, fmt, output)
        return
    done = Export(selection, rows, fmt, sys.stdout).carry_out(runtime, Actor.cli())
    if done.reader_left:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)


def _export_to_file(runtime: Runtime, selection: Selection, rows: str, fmt: str, output: Path) -> None:
    """Writes FILE.part, counted first for a progress bar on stderr, then puts it in place of FILE."""
    from ..ops.door import Actor
    from ..ops.export import Export

    part = output.with_name(output.name + ".part")
    try:
        stream = open(part, "w", encoding="utf-8", newline="")  # closed by the with below
    except OSError as exc:
        raise click.FileError(str(part), exc.strerror) from None
    door = Export(selection, rows, fmt, stream, counted=True)
    try:
        with stream:
            plan = door.plan(runtime)
            with _bar(rows, plan.count) as advance:
                done = door.carry_out(runtime, Actor.cli(), plan, advance)
        os.replace(part, output)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    click.echo(f"exported {done.rows} {rows} rows to {output}", err=True)


@contextmanager
def _bar(rows: str, total: int | None) -> Iterator[Progress]:
    """The export's progress bar on stderr, gone when done."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    from .output import console

    columns = (TextColumn(f"exporting {rows}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Bar(*columns, console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("export", total=total)
        yield lambda n: bar.advance(task, n)
