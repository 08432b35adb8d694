"""``dispatcher schema``: the partner contract as documents partners load into their tools."""

from __future__ import annotations

import json

import click

from .params import EVENT


@click.command("schema")
@click.argument("event", type=EVENT, metavar="EVENT", required=False)
@click.option("--openapi", is_flag=True, help="Print the OpenAPI 3.1 document of all six webhooks instead.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    help="With --openapi: YAML (the default) or JSON. An event's schema is always JSON.",
)
def schema_command(event: str | None, openapi: bool, fmt: str | None) -> None:
    """Print the JSON Schema (2020-12) of EVENT's whole body, or with --openapi the OpenAPI 3.1
    document whose `webhooks` section has every event, its headers, responses and examples."""
    if openapi == (event is not None):
        raise click.UsageError("give an EVENT, or --openapi for every event")
    if fmt is not None and not openapi:
        raise click.UsageError("--format applies to --openapi; an event's schema is JSON")
    if event is not None:
        from ..contract.schemas import event_schema

        click.echo(json.dumps(event_schema(event), indent=2, ensure_ascii=False))
        return
    from ..contract.openapi import openapi_document

    document = openapi_document()
    if fmt == "json":
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        import yaml

        click.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110), nl=False)
