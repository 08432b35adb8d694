"""``dispatcher api``: the HTTP API, and ``dispatcher api tokens create|list|revoke``, who may
call it. The work is :mod:`dispatcher.api.serve` and :mod:`dispatcher.ops.api_tokens`; this
module parses and prints.

A token is printed once, alone on its line on stdout (so a script can capture it), with a note
on stderr that it will not be shown again; it is never listed, logged or audited."""

from __future__ import annotations

from typing import Any

import click

from .output import fail, print_table, to_json

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8481
MAX_WORKERS = 64
LIST_COLUMNS = ("name", "scopes", "created (UTC)", "last used (UTC)")


@click.group("api", invoke_without_command=True)
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="The address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, MAX_WORKERS),
    help="Server processes sharing the port.",
)
@click.pass_context
def api(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """Serve the HTTP API: dispatch events, read deliveries, operate endpoints.

    Callers send `Authorization: Bearer TOKEN` with a token `dispatcher api tokens create`
    made. In production it listens only on this machine (127.0.0.1, ::1,
    localhost) unless api.https is set.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..api.serve import serve

    serve(host=host, port=port, workers=workers)


@api.group("tokens")
def tokens() -> None:
    """Who may call the API: make, list and revoke tokens."""


@tokens.command("create")
@click.argument("name")
@click.option(
    "--scopes",
    required=True,
    help="Comma-separated: send, read, operate, read:payload (e.g. send,read).",
)
def create(name: str, scopes: str) -> None:
    """Make a token NAME (1-64 letters, digits, '.', '_', '-') with the scopes given, and print
    it once: only its hash is kept."""
    from ..errors import DispatcherError
    from ..ops.api_tokens import CreateToken, parse_scopes
    from ..ops.door import Actor
    from ..runtime import get_runtime

    runtime = get_runtime()
    try:
        done = CreateToken(name, parse_scopes(scopes)).carry_out(runtime, Actor.cli())
    except DispatcherError as exc:
        fail(str(exc))
    click.echo(
        f"API token {done.name} created with scopes {','.join(done.scopes)}; it is shown once, "
        "here, and cannot be shown again: keep it now",
        err=True,
    )
    click.echo(done.token)


def _rows(listed: list[dict[str, Any]]) -> list[list[Any]]:
    return [[t["name"], ",".join(t["scopes"]), t["created_at"], t["last_used_at"]] for t in listed]


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_tokens(as_json: bool) -> None:
    """The tokens, by name: their scopes, when each was made and last used (never the token)."""
    from ..ops.api_tokens import token_list
    from ..runtime import get_runtime

    listed = token_list(get_runtime())
    if as_json:
        click.echo(to_json(listed))
    elif not listed:
        click.echo("no API tokens (dispatcher api tokens create NAME --scopes ... makes one)")
    else:
        print_table(LIST_COLUMNS, _rows(listed))


@tokens.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke the token NAME: requests carrying it are refused from now on."""
    from ..errors import DispatcherError
    from ..ops.api_tokens import RevokeToken
    from ..ops.door import Actor
    from ..runtime import get_runtime

    try:
        done = RevokeToken(name).carry_out(get_runtime(), Actor.cli())
    except DispatcherError as exc:
        fail(str(exc))
    if done.revoked:
        click.echo(f"API token {done.name} revoked: requests carrying it are refused from now on")
    else:
        click.echo(f"API token {done.name} was revoked meanwhile by someone else")
