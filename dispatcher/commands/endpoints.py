"""``dispatcher endpoints list|disable|enable``: endpoint health, shared by every worker."""

from __future__ import annotations

import sys

import click

from .. import health, queue, store
from ..cli import print_table, runtime, to_json


@click.group()
def endpoints() -> None:
    """List, disable and enable partner endpoints."""


def _configured(name: str):
    rt = runtime()
    endpoint = rt.settings.endpoint(name)
    if endpoint is None:
        known = ", ".join(e.name for e in rt.settings.endpoints) or "(none)"
        click.echo(f"error: unknown endpoint {name!r}; configured: {known}", err=True)
        sys.exit(1)
    return rt, endpoint


@endpoints.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_endpoints(as_json: bool) -> None:
    """Configured endpoints with their state."""
    rt = runtime()
    states = store.endpoint_states(rt.engine)
    rows = []
    for endpoint in rt.settings.endpoints:
        state = states.get(endpoint.name, {})
        rows.append(
            {
                "name": endpoint.name,
                "url": endpoint.url,
                "events": list(endpoint.events),
                "disabled": bool(state.get("disabled")),
                "reason": state.get("reason"),
                "disabled_at": state.get("disabled_at"),
                "held_back": len(store.held_back(rt.engine, endpoint.name)) if state.get("disabled") else 0,
            }
        )
    if as_json:
        click.echo(to_json(rows))
        return
    print_table(
        ("name", "state", "reason", "since (UTC)", "held back", "url"),
        [
            [
                r["name"],
                "disabled" if r["disabled"] else "enabled",
                r["reason"],
                r["disabled_at"],
                r["held_back"],
                r["url"],
            ]
            for r in rows
        ],
    )


@endpoints.command()
@click.argument("name")
@click.option("--reason", default="disabled by an operator", show_default=True)
def disable(name: str, reason: str) -> None:
    """Stop sending to NAME: new deliveries are recorded failed (endpoint_disabled), not sent."""
    rt, endpoint = _configured(name)
    changed = health.disable(rt.engine, endpoint.name, reason)
    click.echo(f"{name}: {'disabled' if changed else 'already disabled'}")


@endpoints.command()
@click.argument("name")
@click.option(
    "--resend/--no-resend",
    default=None,
    help="Re-send what was held back while disabled (asks if not given).",
)
def enable(name: str, resend: bool | None) -> None:
    """Send to NAME again, and offer to re-send the deliveries held back while it was disabled."""
    rt, endpoint = _configured(name)
    changed = health.enable(rt.engine, endpoint.name)
    click.echo(f"{name}: {'enabled' if changed else 'already enabled'}")
    held = store.held_back(rt.engine, endpoint.name)
    if not held:
        return
    if resend is None:
        resend = click.confirm(
            f"re-send the {len(held)} deliveries held back while {name} was disabled?", default=True
        )
    if not resend:
        click.echo(
            f"{len(held)} held-back deliveries left failed; `dispatcher retry ID...` re-sends any of them"
        )
        return
    max_attempts = rt.settings.delivery_for(endpoint).max_attempts
    requeued = 0
    with click.progressbar(held, label="re-queueing", file=sys.stderr) as bar:
        for request_id in bar:
            if store.grant_retry(rt.engine, request_id, max_attempts):
                queue.remove_job(rt.queue, request_id)
                queue.ensure_queued(rt.queue, request_id)
                requeued += 1
    click.echo(f"{requeued} held-back deliveries re-queued")


def register(cli: click.Group) -> None:
    cli.add_command(endpoints)
