"""``dispatcher keys generate``: a fresh Standard Webhooks signing secret, storage key or search key."""

from __future__ import annotations

import click


@click.group()
def keys() -> None:
    """Signing secrets (Standard Webhooks), storage keys (encryption at rest) and the search key."""


@keys.command()
@click.option(
    "--bytes", "size", default=32, show_default=True, type=click.IntRange(24, 64), help="Key length."
)
@click.option("--storage", is_flag=True, help="A storage key (storage_keys) instead of a signing secret.")
@click.option(
    "--search", is_flag=True, help="A search key (search_key) instead: to find deliveries by business id."
)
def generate(size: int, storage: bool, search: bool) -> None:
    """Print a fresh `whsec_...` secret for an endpoint's `signing_secret`; with --storage a
    key for `storage_keys` (encryption at rest: put it first to seal new rows with it); with
    --search a key for `search_key` (DISPATCHER_SEARCH_KEY): deliveries dispatched from then on
    are found by their order, prescription, encounter or patient id (`log list --business-id`,
    the console); those dispatched before are not indexed, nor, after a change of key, those
    indexed under the old one."""
    if storage and search:
        raise click.UsageError("--storage and --search: choose one")
    if search:
        from ..store.search import new_key as new_search_key

        click.echo(new_search_key())
        return
    if storage:
        from ..store.sealing import new_key

        click.echo(new_key())
        return
    from ..contract.signing import generate_secret

    click.echo(generate_secret(size))
