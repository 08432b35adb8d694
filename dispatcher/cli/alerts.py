"""``dispatcher alerts list|test|check``: the alerts recorded and what each channel answered, a
test alert through the channels, and one pass that evaluates and sends (for cron or a systemd
timer, when every worker may be down). The work is :mod:`dispatcher.ops.alerts`; this module
parses and prints."""

from __future__ import annotations

import sys
from typing import Any

import click

from .output import fail, print_table, say, to_json

LIST_COLUMNS = ("id", "occurred (UTC)", "kind", "endpoint", "count", "detail", "resolved (UTC)", "sent to")


@click.group()
def alerts() -> None:
    """The alerts to the people on call: list them, send a test, evaluate and send now."""


def _sends_cell(sends: list[dict[str, Any]]) -> str:
    """``oncall: sent; mail: pending (2 tries)``, or ``-`` for an alert no rule routed."""
    parts = []
    for send in sends:
        tries = f" ({send['attempts']} tries)" if send["status"] != "sent" and send["attempts"] else ""
        parts.append(f"{send['channel']}: {send['status']}{tries}")
    return "; ".join(parts) or "-"


@alerts.command("list")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="The newest this many."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_alerts(limit: int, as_json: bool) -> None:
    """The alerts recorded, newest first, with where each went and what it answered."""
    from ..ops.alerts import alert_documents
    from ..runtime import get_runtime

    documents = alert_documents(get_runtime(), limit)
    if as_json:
        click.echo(to_json(documents))
        return
    if not documents:
        click.echo("no alerts")
        return
    print_table(
        LIST_COLUMNS,
        [
            [d["id"], d["occurred_at"], d["kind"], d["endpoint"], d["count"], d["detail"], d["resolved_at"]]
            + [_sends_cell(d["sends"])]
            for d in documents
        ],
    )


@alerts.command("test")
@click.argument("channel", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def test(channel: str | None, as_json: bool) -> None:
    """Send a test alert to CHANNEL (default: every channel) and say what each answered. Exits 1
    when a channel did not take it."""
    from ..ops.alerts import AlertsTest
    from ..ops.door import Actor
    from ..runtime import get_runtime

    runtime = get_runtime()
    door = AlertsTest(channel)
    plan = door.plan(runtime)
    say(plan.description, as_json)
    done = door.carry_out(runtime, Actor.cli(), plan)
    if as_json:
        click.echo(to_json(done.as_dict()))
    else:
        print_table(
            ("channel", "result", "answer"),
            [[s.channel, "sent" if s.ok else "failed", s.answer] for s in done.tries],
        )
    if done.failed:
        sys.exit(1)


@alerts.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def check(as_json: bool) -> None:
    """Evaluate the alerts, workers.none_alive included, and send what is due: for cron or a
    systemd timer, so the people on call hear of it when every worker is down."""
    from ..ops.alerts import check as check_alerts
    from ..runtime import get_runtime

    runtime = get_runtime()
    if not runtime.settings.alerts.channels or not runtime.settings.alerts.rules:
        fail("alerts are not configured: set alerts.channels and alerts.rules")
    report = check_alerts(runtime)
    if report is None:
        say("another process is running the alerts pass now; nothing done", as_json)
        if as_json:
            click.echo(to_json(None))
        return
    if not report.locked:
        click.echo("warning: Redis did not answer; the pass ran without its lock", err=True)
    if as_json:
        click.echo(to_json(report.as_dict()))
        return
    for occurrence in report.raised:
        click.echo(f"raised {occurrence}")
    for occurrence in report.resolved:
        click.echo(f"resolved {occurrence}")
    for sent in report.tries:
        click.echo(f"{sent.kind} #{sent.alert_id} -> {sent.channel}: {sent.status} ({sent.answer})")
    counts = report.counts()
    click.echo(
        f"{counts['raised']} raised, {counts['resolved']} resolved, {counts['sent']} sent, "
        f"{counts['retrying']} to retry, {counts['failed']} failed"
    )
