"""``dispatcher endpoints list|disable|enable|check``: endpoint health, shared by every worker,
and whether a partner can be reached. The actions are the doors of :mod:`dispatcher.ops.endpoints`;
the check is :mod:`dispatcher.ops.endpoint_check`; this module parses, asks and prints. The
commands that change the endpoints themselves (add, edit, show, pause, resume, rotate-key,
rotate-secret, remove, import) are :mod:`.endpoint_admin`'s, in the same group."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .doors import carried_out
from .endpoint_admin import COMMANDS as ADMIN_COMMANDS
from .output import fail, print_table, say, to_json
from .params import EVENT

if TYPE_CHECKING:
    from ..ops.endpoint_check import Step

COLUMNS = ("name", "state", "breaker", "reason", "since (UTC)", "held back", "url")


@click.group()
def endpoints() -> None:
    """List, add, change, pause, disable, rotate, remove and check partner endpoints."""


for _command in ADMIN_COMMANDS:
    endpoints.add_command(_command)


def _table_row(row: dict[str, Any]) -> list[Any]:
    state = (
        ", ".join(w for w, on in (("disabled", row["disabled"]), ("paused", row["paused"])) if on)
        or "enabled"
    )
    return [
        row["name"],
        state,
        row["breaker"],
        row["reason"],
        row["disabled_at"],
        row["held_back"],
        row["url"],
    ]


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


CHECK_COLUMNS = ("step", "result", "time", "detail")


def _step_document(step: Step) -> dict[str, Any]:
    """A step in ``endpoints check --json``: ``ok`` and ``ms`` are null when it was skipped."""
    return {"step": step.name, "ok": step.ok, "detail": step.detail, "ms": step.ms}


RESULTS = {True: "✓", False: "✗", None: "skipped"}


@endpoints.command()
@click.argument("name")
@click.option(
    "--send", "send_sample", is_flag=True, help="Also POST the event's seed sample (not stored, not queued)."
)
@click.option(
    "--event", type=EVENT, help="The event --send sends [default: the endpoint's first, or order_changed]."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def check(name: str, send_sample: bool, event: str | None, as_json: bool) -> None:
    """Check that NAME can be reached, step by step: resolve its host (the guard's verdict),
    connect (through the proxy when one is set), TLS (with the client certificate) and an
    OAuth2 token, each with its time; --send also sends an event. Exits 1 when a step fails."""
    from ..ops.endpoint_check import check_endpoint, sample_event
    from ..runtime import get_runtime

    if event is not None and not send_sample:
        raise click.UsageError("--event is used only with --send")
    runtime = get_runtime()
    endpoint = runtime.settings.require_endpoint(name)
    send_event = (event or sample_event(endpoint)) if send_sample else None
    steps = check_endpoint(runtime, name, send_event)
    failed = [step.name for step in steps if step.ok is False]
    if as_json:
        document = {"endpoint": name, "ok": not failed, "steps": [_step_document(step) for step in steps]}
        click.echo(to_json(document))
    else:
        rows = [
            [step.name, RESULTS[step.ok], None if step.ms is None else f"{step.ms} ms", step.detail]
            for step in steps
        ]
        print_table(CHECK_COLUMNS, rows, title=f"endpoint {name}")
    if failed:
        fail(f"endpoint {name}: the {failed[0]} step failed")
    say(f"endpoint {name}: every step passed", as_json)
