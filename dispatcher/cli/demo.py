"""``dispatcher demo``: the whole path on this machine, printed as it goes."""

from __future__ import annotations

import sys

import click

from .output import print_table


@click.command()
@click.option("--keep", is_flag=True, help="Keep the demo's database and log in storage/demo.")
def demo(keep: bool) -> None:
    """Run the whole path on this machine: receiver, six seed events, a retry, a worker, the log."""
    from ..ops.demo import run_demo
    from .log_reports import print_stats

    result = run_demo(keep=keep, say=click.echo)
    print_table(
        ("request_id", "event", "status", "attempts", "http"),
        [
            [r["request_id"], r["event"], r["status"], r["attempts"], r["last_http_status"]]
            for r in result.deliveries
        ],
        title="deliveries",
    )
    print_table(
        ("event", "attempt", "retry", "outcome", "http", "duration_ms"),
        [
            [a["event"], a["attempt"], a["retry"], a["outcome"], a["http_status"], a["duration_ms"]]
            for a in result.attempts
        ],
        title="attempts (WebhookEventTransactionLog)",
    )
    if result.stats is not None:
        print_stats(result.stats, by=("event",), window="stats (dispatcher log stats)")
    click.echo(
        f"{result.delivered} of {len(result.request_ids)} delivered in {len(result.attempts)} attempts; "
        f"the receiver handled {result.received} events and {result.duplicates} duplicates"
    )
    sys.exit(0 if result.ok else 1)
