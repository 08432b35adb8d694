"""``dispatcher keys generate``: a fresh Standard Webhooks signing secret, or storage key."""

from __future__ import annotations

import click


@click.group()
def keys() -> None:
    """Signing secrets (Standard Webhooks) and storage keys (encryption at rest)."""


@keys.command()
@click.option(
    "--bytes", "size", default=32, show_default=True, type=click.IntRange(24, 64), help="Key length."
)
@click.option("--storage", is_flag=True, help="A storage key (storage_keys) instead of a signing secret.")
def generate(size: int, storage: bool) -> None:
    """Print a fresh `whsec_...` secret for an endpoint's `signing_secret`, or with --storage a
    key for `storage_keys` (encryption at rest: put it first to seal new rows with it)."""
    if storage:
        from ..store.sealing import new_key

        click.echo(new_key())
        return
    from ..contract.signing import generate_secret

    click.echo(generate_secret(size))
