"""``dispatcher log stats`` and ``dispatcher log export``: reports over the transaction log."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import events, reports, store
from ..cli import MOMENT, print_table, runtime, to_json


def _percent(rate: float | None) -> str | None:
    return None if rate is None else f"{rate * 100:.1f}%"


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


def stats_row(name: str, group: reports.GroupStats) -> list[Any]:
    return [
        name,
        group.deliveries,
        group.delivered,
        group.failed,
        group.pending,
        group.retrying,
        _percent(group.success_rate),
        None if group.attempts_per_delivery is None else f"{group.attempts_per_delivery:.2f}",
        group.p50_ms,
        group.p95_ms,
    ]


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
    if until is None:
        until = store.utcnow()
    if since >= until:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    stats = reports.delivery_stats(runtime().engine, since=since, until=until)
    if as_json:
        click.echo(to_json(stats.as_dict()))
        return
    window = f"deliveries created {events.format_utc(since)} .. {events.format_utc(until)} (UTC)"
    total = stats_row("(total)", stats.total)
    print_table(
        ("event", *STATS_COLUMNS),
        [*(stats_row(name, group) for name, group in stats.by_event), total],
        title=f"by event: {window}",
    )
    print_table(
        ("endpoint", *STATS_COLUMNS),
        [*(stats_row(name, group) for name, group in stats.by_endpoint), total],
        title=f"by endpoint: {window}",
    )


@click.command("export")
@click.option("--since", type=MOMENT, help="Rows created at or after: ISO 8601 or an age (30m, 2h, 7d).")
@click.option("--until", type=MOMENT, help="Rows created before: ISO 8601 or an age.")
@click.option("--event", type=click.Choice(events.EVENT_NAMES), help="Only this event.")
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
    type=click.Choice(list(reports.ROW_KINDS)),
    default="attempts",
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
    engine = runtime().engine
    filters: dict[str, Any] = {"since": since, "until": until, "event": event, "endpoint": endpoint}
    columns = reports.ROW_KINDS[rows]
    if output is None:
        _export_to_stdout(engine, rows, fmt, columns, filters)
        return

    part = output.with_name(output.name + ".part")
    try:
        stream = open(part, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise click.FileError(str(part), exc.strerror) from None
    err = Console(stderr=True)
    try:
        total = reports.count_rows(engine, rows, **filters)
        with (
            stream,
            Progress(
                TextColumn(f"exporting {rows}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as progress,
        ):
            task = progress.add_task("export", total=total)
            writer = reports.RowWriter(stream, fmt, columns)
            for row in reports.iter_rows(engine, rows, **filters):
                writer.write(row)
                if writer.count % reports.PAGE_SIZE == 0:
                    progress.update(task, completed=writer.count)
            progress.update(task, completed=writer.count)
        os.replace(part, output)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    click.echo(f"exported {writer.count} {rows} rows to {output}", err=True)


def _export_to_stdout(
    engine: Any, rows: str, fmt: str, columns: tuple[str, ...], filters: dict[str, Any]
) -> None:
    stream: IO[str] = sys.stdout
    try:
        writer = reports.RowWriter(stream, fmt, columns)
        for row in reports.iter_rows(engine, rows, **filters):
            writer.write(row)
        stream.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)


def register(cli: click.Group) -> None:
    log_group = cli.commands["log"]
    assert isinstance(log_group, click.Group)
    log_group.add_command(log_stats)
    log_group.add_command(log_export)
