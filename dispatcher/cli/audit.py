"""``dispatcher audit list``: who did what to the log, and when."""

from __future__ import annotations

from datetime import datetime

import click

from .output import print_table, to_json
from .params import MOMENT


@click.group("audit")
def audit() -> None:
    """The audit trail of operator actions on the log."""


@audit.command("list")
@click.option("--since", type=MOMENT, help="At or after: ISO 8601 or an age (30m, 2h, 7d).")
@click.option(
    "--limit", default=100, show_default=True, type=click.IntRange(1, 1_000_000), help="The newest this many."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def audit_list(since: datetime | None, limit: int, as_json: bool) -> None:
    """Operator actions, oldest first: retry, replay, prune, retention, erase, export, endpoints
    disable/enable, storage encrypt/rotate. Times are UTC."""
    from ..ops import audit as trail
    from ..runtime import get_runtime

    entries = trail.entries(get_runtime().engine, since, limit)
    if as_json:
        click.echo(to_json([e.as_dict() for e in entries]))
        return
    if not entries:
        click.echo("no audit entries" + (" in that time" if since else ""))
        return
    print_table(
        ("at (UTC)", "who", "action", "selection", "counts"),
        [[e.at, e.actor, e.action, _pairs(e.selection), _pairs(e.counts)] for e in entries],
    )


def _pairs(values: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items() if v not in (None, [], {}))
