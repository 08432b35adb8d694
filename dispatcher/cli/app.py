"""The ``dispatcher`` command: its root group, which finds each command in its own module only
when it is asked for, and :func:`main`, which turns expected errors into one line on stderr.

A command module imports click and the light shared kernel at the top, and the database,
Redis, RQ or HTTP libraries only inside the command that needs them, so ``dispatcher --help``
loads none of them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import click

from ..errors import DispatcherError
from .output import fail


class CommandError(click.ClickException):
    """An expected error, shown as one line: ``error: <message>``, exit 1."""

    def show(self, file: object = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class LazyGroup(click.Group):
    """A group whose commands are named ``"module:attribute"`` and imported on first use; an
    expected error in any of them (a :class:`DispatcherError`, Redis or the database away) is
    one line, however the command is invoked."""

    def __init__(self, *args: object, lazy_commands: dict[str, str] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_commands = lazy_commands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            module, _, attribute = self.lazy_commands[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DispatcherError as exc:
            raise CommandError(str(exc)) from exc
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            message = service_error(exc)
            if message is None:
                raise
            raise CommandError(message) from exc


COMMANDS = {
    "send": "dispatcher.cli.send:send",
    "sample": "dispatcher.cli.send:sample",
    "schema": "dispatcher.cli.schema:schema_command",
    "log": "dispatcher.cli.log:log",
    "info": "dispatcher.cli.info:info",
    "retry": "dispatcher.cli.resend:retry_command",
    "replay": "dispatcher.cli.resend:replay_command",
    "prune": "dispatcher.cli.prune:prune_command",
    "reconcile": "dispatcher.cli.worker:reconcile_command",
    "worker": "dispatcher.cli.worker:worker",
    "endpoints": "dispatcher.cli.endpoints:endpoints",
    "config": "dispatcher.cli.config:config_group",
    "keys": "dispatcher.cli.keys:keys",
    "db": "dispatcher.cli.db:db",
    "retention": "dispatcher.cli.retention:retention",
    "storage": "dispatcher.cli.storage:storage",
    "audit": "dispatcher.cli.audit:audit",
    "simulate": "dispatcher.cli.simulate:simulate_command",
    "receiver": "dispatcher.cli.receiver:receiver",
    "demo": "dispatcher.cli.demo:demo",
    "console": "dispatcher.cli.console:console",
    "alerts": "dispatcher.cli.alerts:alerts",
    "api": "dispatcher.cli.api:api",
}
"""Every command and where it lives: adding one is a module and a line here."""


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="baremeds-webhook-dispatcher", prog_name="dispatcher")
def cli() -> None:
    """Baremeds outgoing webhooks: dispatch events, run workers, read and re-send the transaction log.

    Configuration comes from the YAML file named by DISPATCHER_CONFIG (else ./config.yaml);
    DISPATCHER_REDIS_URL and DISPATCHER_DATABASE_URL override it.
    """


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: turns expected errors into one line on stderr."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="dispatcher", standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", 1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)


def service_error(exc: BaseException) -> str | None:
    """One line for a Redis or database error, or None for any other. A library that was never
    imported cannot have raised, so neither is imported here."""
    redis = sys.modules.get("redis")
    if redis is not None and isinstance(exc, redis.exceptions.ConnectionError):
        return f"Redis at {_redis_url()} is unreachable ({exc}); start it or set DISPATCHER_REDIS_URL"
    if redis is not None and isinstance(exc, redis.RedisError):
        return f"Redis error: {exc}"
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.SQLAlchemyError):
        from ..store import describe_error

        return f"database error: {describe_error(exc)}"
    return None


def _redis_url() -> str:
    """The configured Redis URL with its password masked."""
    try:
        from ..redaction import mask_url
        from ..runtime import get_runtime

        return mask_url(get_runtime().settings.redis_url)
    except Exception:  # noqa: BLE001 - the error being reported must be shown, whatever the config does
        return "(configured URL)"
