"""``dispatcher send`` and ``dispatcher sample``: dispatch an event, or print a seed example."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from ..vocabulary import EVENT_NAMES
from .output import cell, to_json
from .params import EVENT, read_data_option

if TYPE_CHECKING:
    from ..runtime import Runtime


@click.command()
@click.argument("event", type=EVENT, metavar="EVENT")
@click.option("--data", "data_text", help="The event's data: JSON text or @file.json.")
@click.option("--sample", is_flag=True, help="Send the seed's example data for EVENT.")
@click.option("--dispatched-by", default="SYSTEM", show_default=True, help="metadata.dispatched_by")
@click.option("--endpoint", "endpoints", multiple=True, help="Send only to this endpoint (repeatable).")
@click.option(
    "--idempotency-key",
    help="Up to 255 characters: a repeat with the same key and data (within idempotency_ttl) "
    "prints the first send's request ids and sends nothing.",
)
@click.option("--ordering-key", help="For ordered endpoints: the key whose events arrive in dispatch order.")
@click.option(
    "--json", "as_json", is_flag=True, help='Print {"deliveries": [{"endpoint": ..., "request_id": ...}]}.'
)
def send(
    event: str,
    data_text: str | None,
    sample: bool,
    dispatched_by: str,
    endpoints: tuple[str, ...],
    idempotency_key: str | None,
    ordering_key: str | None,
    as_json: bool,
) -> None:
    """Dispatch EVENT and print one row per delivery: its endpoint and request id.

    EVENT is one of:"""
    if sample == (data_text is not None):
        raise click.UsageError("give exactly one of --data JSON|@file.json or --sample")
    from ..contract.catalogue import get_event
    from ..intake import DispatchRequest
    from ..intake.dispatch import dispatch_request
    from ..runtime import get_runtime

    data = get_event(event).example() if sample else read_data_option(data_text or "")
    request = DispatchRequest(
        event,
        data,
        endpoints=list(endpoints) or None,
        dispatched_by=dispatched_by,
        idempotency_key=idempotency_key,
        ordering_key=ordering_key,
    )
    runtime = get_runtime()
    request_ids = dispatch_request(runtime, request)
    deliveries = [
        {"endpoint": endpoint, "request_id": rid} for rid, endpoint in endpoints_of(runtime, request_ids)
    ]
    if as_json:
        click.echo(to_json({"deliveries": deliveries}))
    elif not deliveries:
        click.echo(f"no endpoint subscribes to {event}; nothing was sent", err=True)
    else:
        click.echo(
            aligned(["endpoint", "request_id"], [[d["endpoint"], d["request_id"]] for d in deliveries])
        )


def endpoints_of(runtime: Runtime, request_ids: list[str]) -> list[tuple[str, str]]:
    """Each request id with the endpoint its delivery is for, in the order given (read from the
    log: a repeated idempotency key's ids are an earlier dispatch's)."""
    from .. import store

    found = store.endpoints_of(runtime.engine, request_ids)
    return [(request_id, found.get(request_id, "?")) for request_id in request_ids]


def aligned(header: list[str], rows: list[list[str]]) -> str:
    """A plain table: a header and rows, each column as wide as its widest cell, two spaces
    apart; a cell as :func:`~.output.cell` shows it (no character that moves a terminal)."""
    lines = [header, *([cell(value) for value in row] for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


send.help = (send.help or "") + " " + ", ".join(EVENT_NAMES) + "."


@click.command()
@click.argument("event", type=EVENT, metavar="EVENT")
def sample(event: str) -> None:
    """Print the seed's example data for EVENT (valid input for `send --data`)."""
    from ..contract.catalogue import get_event

    click.echo(json.dumps(get_event(event).example(), indent=2))
