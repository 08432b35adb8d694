"""``dispatcher keys generate``: a fresh Standard Webhooks signing secret."""

from __future__ import annotations

import click

from ..signing import generate_secret


@click.group()
def keys() -> None:
    """Signing secrets (Standard Webhooks)."""


@keys.command()
@click.option(
    "--bytes", "size", default=32, show_default=True, type=click.IntRange(24, 64), help="Key length."
)
def generate(size: int) -> None:
    """Print a fresh `whsec_...` secret for an endpoint's `signing_secret`."""
    click.echo(generate_secret(size))


def register(cli: click.Group) -> None:
    cli.add_command(keys)
