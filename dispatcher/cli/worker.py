"""``dispatcher worker`` and ``dispatcher reconcile``: run workers, repair what they left."""

from __future__ import annotations

import dataclasses
import sys

import click

from ..config.settings import MAX_WORKER_THREADS
from .output import to_json


@click.command()
@click.option("--burst", is_flag=True, help="Exit when nothing is queued.")
@click.option("--name", help="Worker name (default: host.pid.random); with --concurrency, the names' prefix.")
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Run this many worker processes under one supervisor (a dead one is replaced).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, MAX_WORKER_THREADS),
    help="POSTs each worker process keeps in flight at once (default: worker.threads, 16).",
)
@click.option(
    "--verbose", is_flag=True, help="Also print RQ's own lines about each job (Job OK, retries, registries)."
)
def worker(burst: bool, name: str | None, concurrency: int, threads: int | None, verbose: bool) -> None:
    """Run a worker on the configured queue, with the scheduler.

    It prints one line per attempt: time, event, endpoint, request id (first 8), outcome, ms."""
    from ..config import load_settings, require_for_worker

    settings = load_settings()  # a bad config stops here, before any process starts
    require_for_worker(settings)
    if threads is not None:
        settings = dataclasses.replace(settings, worker_threads=threads)
    if concurrency == 1:
        from ..worker.process import run_worker

        run_worker(settings, burst=burst, name=name, verbose=verbose)
        return
    from ..logs import setup_process_log
    from ..worker.supervisor import Supervisor, default_base_name

    setup_process_log(settings.process_log, settings.process_log_retention_days, settings.secrets())
    supervisor = Supervisor(
        concurrency, name or default_base_name(), burst=burst, threads=threads, verbose=verbose
    )
    sys.exit(supervisor.run())


@click.command("reconcile")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def reconcile_command(as_json: bool) -> None:
    """Re-queue deliveries whose job is gone from Redis, and recover ones a dead worker held."""
    from ..runtime import get_runtime
    from ..worker.reconcile import reconcile

    report = reconcile(get_runtime())
    if as_json:
        click.echo(to_json(report.as_dict()))
        return
    click.echo(
        f"checked {report.checked} unfinished deliveries: {len(report.requeued)} re-queued, "
        f"{len(report.abandoned)} recovered from dead workers, {len(report.overdue)} overdue retries moved"
    )
    for label, request_ids in (
        ("recovered", report.abandoned),
        ("re-queued", report.requeued),
        ("overdue  ", report.overdue),
    ):
        for request_id in request_ids:
            click.echo(f"  {label}  {request_id}")
