"""``dispatcher simulate``: realistic traffic at a steady rate, for partners testing a receiver."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from ..errors import DispatcherError
from .output import print_table, to_json
from .params import DURATION, RATE

if TYPE_CHECKING:
    from ..ops.simulate import Summary


@click.command("simulate")
@click.option("--rate", type=RATE, default="5/s", show_default=True, help="Events per second: 5/s, 5, 300/m.")
@click.option(
    "--duration",
    type=DURATION,
    default="60s",
    show_default=True,
    help="How long: 60s, 2m, or seconds. Sends rate x duration events.",
)
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    help="Send only to this endpoint (repeatable); default: every subscribed endpoint.",
)
@click.option(
    "--seed",
    type=int,
    help="Reproducible run: the same seed and rate give the same events, timestamps included "
    "(the simulated clock then starts at 2026-01-30T08:00:00Z instead of now).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Dispatch nothing: print the events as JSON lines ({event, data}) at once, unpaced.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def simulate_command(
    rate: float,
    duration: float,
    endpoints: tuple[str, ...],
    seed: int | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Dispatch realistic, internally consistent traffic: encounters assigned, prescribed,
    adjusted, discussed, shipped and delivered (some cancelled), with stable patient,
    encounter and order ids across their events. Shows a live progress line and a summary."""
    from ..ops import simulate as sim

    count = sim.planned_events(rate, duration)
    stream = sim.generate(seed, start=sim.start_for(seed), mean_gap_seconds=1.0 / rate)
    summary = sim.Summary(planned=count, rate=rate, seed=seed, dry_run=dry_run)
    if dry_run:
        _dry_run(stream, rate, count, summary)
        return
    _check_target(endpoints)
    _send_paced(stream, rate, count, summary, list(endpoints) or None)
    if as_json:
        click.echo(to_json(summary.as_dict()))
    else:
        _print_summary(summary)
    if summary.interrupted:
        sys.exit(130)


def _dry_run(stream: Any, rate: float, count: int, summary: Summary) -> None:
    from ..contract.validation import validate
    from ..ops import simulate as sim

    def show(event: str, data: dict[str, Any]) -> int:
        click.echo(json.dumps({"event": event, "data": validate(event, data)}))
        return 0

    sim.run(stream, rate=rate, count=count, send=show, summary=summary, pace=False)
    click.echo(f"{summary.events} events generated (dry run: nothing dispatched)", err=True)


def _check_target(endpoints: tuple[str, ...]) -> None:
    """Refuses production, a run with nothing to deliver to, and unknown endpoints."""
    from ..runtime import get_runtime

    settings = get_runtime().settings
    for name in endpoints:
        settings.require_endpoint(name)
    if settings.environment == "production":
        raise DispatcherError(
            "simulate sends synthetic patients' events; refusing in environment production "
            "(point DISPATCHER_CONFIG at a staging config, or use --dry-run)"
        )
    if not settings.endpoints:
        raise DispatcherError(
            "no endpoints are configured, so nothing would be delivered; "
            "add one to the config, or use --dry-run to see the events"
        )


def _send_paced(stream: Any, rate: float, count: int, summary: Summary, endpoints: list[str] | None) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..intake.dispatch import dispatch
    from ..ops import simulate as sim
    from .output import console

    def send(event: str, data: dict[str, Any]) -> int:
        return len(dispatch(event, data, dispatched_by=sim.DISPATCHED_BY, endpoints=endpoints))

    progress = Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events  {task.fields[rate]:.1f}/s  {task.fields[deliveries]} deliveries"),
        TimeElapsedColumn(),
        console=console(stderr=True),
    )
    with progress:
        task = progress.add_task("simulate", total=count, rate=0.0, deliveries=0)

        def advance(current: Summary) -> None:
            progress.update(
                task, completed=current.events, rate=current.achieved_rate, deliveries=current.deliveries
            )

        sim.run(stream, rate=rate, count=count, send=send, summary=summary, on_event=advance)


def _print_summary(summary: Summary) -> None:
    print_table(
        ("event", "events"),
        [[name, count] for name, count in sorted(summary.by_event.items())] + [["total", summary.events]],
        title="simulated events",
    )
    note = " (interrupted)" if summary.interrupted else ""
    click.echo(
        f"{summary.events} of {summary.planned} events{note}, {summary.deliveries} deliveries created "
        f"in {summary.elapsed_seconds:.1f}s: {summary.achieved_rate:.1f} events/s "
        f"(target {summary.rate:g}/s)"
    )
