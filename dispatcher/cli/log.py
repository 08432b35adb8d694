"""``dispatcher log list|show|stats|export|erase``: read the transaction log, erase from it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ..vocabulary import STATUSES
from .app import LazyGroup
from .output import cell, console, fail, print_table, to_json, visible
from .params import EVENT, MOMENT


@click.group(
    cls=LazyGroup,
    lazy_commands={
        "stats": "dispatcher.cli.log_reports:log_stats",
        "export": "dispatcher.cli.log_reports:log_export",
        "erase": "dispatcher.cli.log_erase:log_erase",
    },
)
def log() -> None:
    """Read the transaction log."""


@log.command("list")
@click.option("--event", type=EVENT, help="Only this event.")
@click.option("--status", type=click.Choice(STATUSES), help="Only deliveries in this status.")
@click.option("--endpoint", help="Only deliveries to this endpoint.")
@click.option("--request-id", help="Only this delivery.")
@click.option(
    "--business-id",
    metavar="VALUE",
    help="Only deliveries whose event holds this order number, prescription, encounter or patient id"
    " (exact; needs search_key; deliveries dispatched before search_key was set are not indexed).",
)
@click.option("--since", type=MOMENT, help="Created at or after: ISO 8601 or an age (30m, 2h, 7d).")
@click.option("--until", type=MOMENT, help="Created before: ISO 8601 or an age.")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="At most this many rows."
)
@click.option(
    "--offset", default=0, show_default=True, type=click.IntRange(0), help="Skip this many rows (paging)."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def log_list(
    event: str | None,
    status: str | None,
    endpoint: str | None,
    request_id: str | None,
    business_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List deliveries, newest first. Times are UTC."""
    from .. import store
    from ..runtime import get_runtime

    runtime = get_runtime()
    selection = store.Selection(
        statuses=(status,) if status else (),
        event=event,
        endpoint=endpoint,
        request_id=request_id,
        since=since,
        until=until,
        business_key=_business_key(runtime.settings.search_key, business_id),
    )
    rows = store.list_deliveries(runtime.engine, selection, limit=limit, offset=offset)
    if as_json:
        click.echo(to_json(rows))
        return
    print_table(
        (
            "request_id",
            "event",
            "endpoint",
            "status",
            "attempts",
            "http",
            "created_at (UTC)",
            "updated_at (UTC)",
        ),
        [[r[c] for c in store.DELIVERY_FIELDS] for r in rows],
    )


def _business_key(search_key: str | None, business_id: str | None) -> str | None:
    """The keyed hash ``--business-id`` selects by (None without the option); the value itself
    is never printed, logged or stored."""
    if business_id is None:
        return None
    from ..store import search

    value = business_id.strip()
    if not value or len(value) > search.MAX_BUSINESS_ID:
        fail(f"--business-id: expected 1 to {search.MAX_BUSINESS_ID} characters")
    if search_key is None:
        fail(search.needs_key("log list --business-id"))
    return search.business_key(search_key, value)


@log.command("show")
@click.argument("request_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def log_show(request_id: str, as_json: bool) -> None:
    """Show a delivery and every attempt."""
    from ..ops.documents import delivery_document
    from ..runtime import get_runtime

    runtime = get_runtime()
    document = delivery_document(runtime.engine, request_id, runtime.masker)
    if as_json:
        click.echo(to_json(document))
        return
    _print_delivery(document)


SUMMARY_MORE = ("next_attempt_at", "reason", "replay_of", "created_at", "updated_at", "payload_erased_at")
"""What ``log show`` prints of a delivery after its state (``store.DELIVERY_STATE``)."""


def _print_delivery(document: dict[str, Any]) -> None:
    """The delivery for a terminal: every stored text with its control characters made visible
    (:func:`visible`: a partner's answer must not move or recolour the operator's terminal), and
    never read as rich markup."""
    from ..store import DELIVERY_STATE

    out = console()
    values = {
        **document,
        "endpoint": f"{document['endpoint']} ({document['url']})",
        "attempts": document["attempt_count"],
    }
    for name in (*DELIVERY_STATE, *SUMMARY_MORE):
        if values[name] is not None:
            out.print(f"[bold]{name:>17}[/bold]  ", end="", highlight=False)
            out.print(cell(values[name]), highlight=False, markup=False)
    out.print("\n[bold]payload[/bold]")
    note, payload = document.get("payload_note"), document["payload"]
    if note and payload is None:
        out.print(visible(f"({note})"), highlight=False, markup=False)
    elif note:
        out.print(visible(f"({note}; shown as stored)"), highlight=False, markup=False)
        out.print(visible(str(payload), keep_lines=True), highlight=False, markup=False)
    else:
        out.print(visible(to_json(payload), keep_lines=True), highlight=False, markup=False)
    columns = (
        "attempt",
        "retry",
        "outcome",
        "http_status",
        "duration_ms",
        "next_attempt_at",
        "created_at",
        "error",
    )
    print_table(
        ("#", "retry", "outcome", "http", "duration_ms", "next_attempt_at", "created_at (UTC)", "error"),
        [[a[c] for c in columns] for a in document["attempts"]],
        title="attempts",
    )
    for a in document["attempts"]:
        if a["response_body"]:
            out.print(f"[bold]response to attempt {a['attempt']}[/bold]: ", end="", highlight=False)
            out.print(visible(a["response_body"], keep_lines=True), highlight=False, markup=False)
