"""``dispatcher console``: the operator console in the browser, and ``dispatcher console
hash-password``, which prints the argon2id hash a user's ``password_hash`` takes."""

from __future__ import annotations

import sys

import click

from .output import fail

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8480


@click.group("console", invoke_without_command=True)
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="The address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
def console(ctx: click.Context, host: str, port: int) -> None:
    """Serve the operator console: deliveries, endpoints, queue, audit, and re-sends.

    Users sign in as console.users in the configuration says (`dispatcher console
    hash-password` makes a password_hash), or through console.trusted_proxy.
    """
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from ..console.app import create_app
    from ..console.listen import start_problem
    from ..runtime import get_runtime

    runtime = get_runtime()
    problem = start_problem(runtime.settings, host)
    if problem:
        fail(problem, 1)
    if runtime.settings.console.session_secret is None:
        click.echo(
            "note: console.session_secret is not set: a random one keys the sign-in form and patient "
            "links, so those open when the console restarts are refused once",
            err=True,
        )
    local = host in ("127.0.0.1", "localhost", "::1")
    if not local and not runtime.settings.console.allowed_hosts and not runtime.settings.console.public_url:
        click.echo(
            f"note: the console answers only to the Host names {host}, localhost, 127.0.0.1 and ::1 "
            "(set console.allowed_hosts or console.public_url for others)",
            err=True,
        )
    click.echo(f"console on http://{host}:{port}/ (Ctrl+C stops it)", err=True)
    # proxy_headers off: the peer address is the one the trusted proxy check reads, never one a
    # client wrote in X-Forwarded-For.
    uvicorn.run(
        create_app(runtime, listen_host=host),
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
    )


@console.command("hash-password")
def hash_password() -> None:
    """Print the argon2id hash of a password, for console.users[].password_hash.

    The password is asked for twice, hidden (or read as one line from standard input when it is
    not a terminal); it is never an argument, so it stays out of the shell's history.
    """
    from ..console.auth import hash_password as argon2_hash

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        fail("the password is empty", 1)
    click.echo(argon2_hash(password))
