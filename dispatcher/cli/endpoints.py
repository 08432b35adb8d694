"""``dispatcher endpoints list|disable|enable``: endpoint health, shared by every worker. The
actions are the doors of :mod:`dispatcher.ops.endpoints`; this module parses, asks and prints."""

from __future__ import annotations

from typing import Any

import click

from .doors import carried_out
from .output import print_table, to_json

COLUMNS = ("name", "state", "reason", "since (UTC)", "held back", "url")


@click.group()
def endpoints() -> None:
    """List, disable and enable partner endpoints."""


def _table_row(row: dict[str, Any]) -> list[Any]:
    state = "disabled" if row["disabled"] else "enabled"
    return [row["name"], state, row["reason"], row["disabled_at"], row["held_back"], row["url"]]


@endpoints.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_endpoints(as_json: bool) -> None:
    """Configured endpoints with their state."""
    from ..ops.endpoints import endpoint_rows
    from ..runtime import get_runtime

    rows = endpoint_rows(get_runtime())
    if as_json:
        click.echo(to_json(rows))
    else:
        print_table(COLUMNS, [_table_row(row) for row in rows])


@endpoints.command()
@click.argument("name")
@click.option("--reason", default="disabled by an operator", show_default=True)
def disable(name: str, reason: str) -> None:
    """Stop sending to NAME: new deliveries are recorded failed (endpoint_disabled), not sent."""
    from ..ops.door import Actor
    from ..ops.endpoints import Disable
    from ..runtime import get_runtime

    done = Disable(name, reason).carry_out(get_runtime(), Actor.cli())
    click.echo(f"{name}: {'disabled' if done.changed else 'already disabled'}")


@endpoints.command()
@click.argument("name")
@click.option(
    "--resend/--no-resend",
    default=None,
    help="Re-send what was held back while disabled (asks if not given).",
)
def enable(name: str, resend: bool | None) -> None:
    """Send to NAME again, and offer to re-send the deliveries held back while it was disabled."""
    from ..ops.endpoints import Enable
    from ..runtime import get_runtime

    runtime = get_runtime()
    door = Enable(name, resend=bool(resend))
    plan = door.plan(runtime)
    held = plan.count or 0
    if held and resend is None:
        question = f"re-send the {held} deliveries held back while {name} was disabled?"
        door = Enable(name, resend=click.confirm(question, default=True))
        plan = door.plan(runtime)
    done = carried_out(runtime, door, plan, "re-queueing" if door.resend and held else None)
    click.echo(f"{name}: {'enabled' if done.changed else 'already enabled'}")
    if not done.held_back:
        return
    if done.resent:
        click.echo(f"{done.requeued} held-back deliveries re-queued")
    else:
        click.echo(
            f"{done.held_back} held-back deliveries left failed; `dispatcher retry ID...` re-sends any of them"
        )
