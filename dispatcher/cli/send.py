"""``dispatcher send`` and ``dispatcher sample``: dispatch an event, or print a seed example."""

from __future__ import annotations

import json

import click

from ..vocabulary import EVENT_NAMES
from .params import EVENT, read_data_option


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
@click.option("--json", "as_json", is_flag=True, help="Print the request ids as a JSON array.")
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
    """Dispatch EVENT and print one request id per delivery.

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
    request_ids = dispatch_request(get_runtime(), request)
    if as_json:
        click.echo(json.dumps(request_ids))
    elif not request_ids:
        click.echo(f"no endpoint subscribes to {event}; nothing was sent", err=True)
    else:
        for request_id in request_ids:
            click.echo(request_id)


send.help = (send.help or "") + " " + ", ".join(EVENT_NAMES) + "."


@click.command()
@click.argument("event", type=EVENT, metavar="EVENT")
def sample(event: str) -> None:
    """Print the seed's example data for EVENT (valid input for `send --data`)."""
    from ..contract.catalogue import get_event

    click.echo(json.dumps(get_event(event).example(), indent=2))
