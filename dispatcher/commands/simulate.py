"""``dispatcher simulate``: realistic traffic at a steady rate, for partners testing a receiver."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import events
from .. import simulate as sim
from ..errors import DispatcherError, UnknownEndpoint


class RateType(click.ParamType):
    """Events per second: ``5/s``, ``5``, ``300/m``, ``100/h``."""

    name = "RATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return sim.parse_rate(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class DurationType(click.ParamType):
    """Seconds: ``60s``, ``2m``, ``1h``, ``1m30s`` or a plain number."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return sim.parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _sender(endpoints: list[str] | None) -> Callable[[str, dict[str, Any]], int]:
    from ..dispatch import dispatch

    def send(event: str, data: dict[str, Any]) -> int:
        return len(dispatch(event, data, dispatched_by=sim.DISPATCHED_BY, endpoints=endpoints))

    return send


def _print_summary(summary: sim.Summary) -> None:
    from ..cli import print_table

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


def register(cli: click.Group) -> None:
    @cli.command("simulate")
    @click.option(
        "--rate",
        type=RateType(),
        default="5/s",
        show_default=True,
        help="Events per second: 5/s, 5, 300/m.",
    )
    @click.option(
        "--duration",
        type=DurationType(),
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
        count = sim.planned_events(rate, duration)
        stream = sim.generate(seed, start=sim.start_for(seed), mean_gap_seconds=1.0 / rate)
        summary = sim.Summary(planned=count, rate=rate, seed=seed, dry_run=dry_run)

        if dry_run:

            def show(event: str, data: dict[str, Any]) -> int:
                click.echo(json.dumps({"event": event, "data": events.validate(event, data)}))
                return 0

            sim.run(stream, rate=rate, count=count, send=show, summary=summary, pace=False)
            click.echo(f"{summary.events} events generated (dry run: nothing dispatched)", err=True)
            return

        from ..cli import runtime

        settings = runtime().settings
        for name in endpoints:
            if settings.endpoint(name) is None:
                raise UnknownEndpoint(name, [e.name for e in settings.endpoints])
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

        progress = Progress(
            TextColumn("simulating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events  {task.fields[rate]:.1f}/s  {task.fields[deliveries]} deliveries"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        with progress:
            task = progress.add_task("simulate", total=count, rate=0.0, deliveries=0)

            def advance(current: sim.Summary) -> None:
                progress.update(
                    task, completed=current.events, rate=current.achieved_rate, deliveries=current.deliveries
                )

            sim.run(
                stream,
                rate=rate,
                count=count,
                send=_sender(list(endpoints) or None),
                summary=summary,
                on_event=advance,
            )
        if as_json:
            from ..cli import to_json

            click.echo(to_json(summary.as_dict()))
        else:
            _print_summary(summary)
        if summary.interrupted:
            sys.exit(130)
