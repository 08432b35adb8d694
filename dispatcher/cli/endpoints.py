"""``dispatcher endpoints list|disable|enable``: endpoint health, shared by every worker."""

from __future__ import annotations

import click

from .output import print_table, progress, to_json


@click.group()
def endpoints() -> None:
    """List, disable and enable partner endpoints."""


@endpoints.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_endpoints(as_json: bool) -> None:
    """Configured endpoints with their state."""
    from ..ops.endpoints import endpoint_rows
    from ..runtime import get_runtime

    rows = endpoint_rows(get_runtime())
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
    from .. import store
    from ..ops import audit
    from ..runtime import get_runtime

    runtime = get_runtime()
    endpoint = runtime.settings.require_endpoint(name)
    changed = store.disable(runtime.engine, endpoint.name, reason)
    audit.record(
        runtime.engine,
        "endpoints disable",
        {"endpoint": endpoint.name, "reason": reason},
        {"changed": int(changed)},
    )
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
    from .. import store
    from ..ops import audit
    from ..ops.endpoints import resend_held_back
    from ..runtime import get_runtime

    runtime = get_runtime()
    endpoint = runtime.settings.require_endpoint(name)
    changed = store.enable(runtime.engine, endpoint.name)
    click.echo(f"{name}: {'enabled' if changed else 'already enabled'}")
    held = len(store.held_back(runtime.engine, endpoint.name))
    counts = {"changed": int(changed), "held_back": held, "requeued": 0}
    if not held:
        audit.record(runtime.engine, "endpoints enable", {"endpoint": endpoint.name}, counts)
        return
    if resend is None:
        resend = click.confirm(
            f"re-send the {held} deliveries held back while {name} was disabled?", default=True
        )
    if not resend:
        audit.record(runtime.engine, "endpoints enable", {"endpoint": endpoint.name}, counts)
        click.echo(f"{held} held-back deliveries left failed; `dispatcher retry ID...` re-sends any of them")
        return
    with progress("re-queueing", held) as advance:
        counts["requeued"] = resend_held_back(runtime, endpoint.name, advance)
    audit.record(runtime.engine, "endpoints enable", {"endpoint": endpoint.name, "resend": True}, counts)
    click.echo(f"{counts['requeued']} held-back deliveries re-queued")
