"""The ``dispatcher`` command: send events, read the transaction log, re-send, run workers.

Every listing prints a table (whole, never cut, when piped) or, with ``--json``, a stable JSON
document documented in the README. A user mistake or an unreachable service is one line on
stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import redis
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from . import events, store
from .config import MAX_WORKER_THREADS, Settings, load_settings, production_warnings
from .errors import DeliveryNotFound, DispatcherError
from .runtime import Runtime, get_runtime

STATUSES = (store.QUEUED, store.IN_FLIGHT, store.RETRYING, store.DELIVERED, store.FAILED)


# --- output helpers --------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return events.format_utc(value)
    return value


def to_json(value: Any) -> str:
    def convert(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: convert(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [convert(v) for v in obj]
        return _json_value(obj)

    return json.dumps(convert(value), indent=2, ensure_ascii=False)


def console() -> Console:
    """A console that never wraps or cuts a table: piped output gets the width it needs."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=10_000, no_color=True, soft_wrap=True)


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    table = Table(title=title, show_lines=False, header_style="bold", title_justify="left")
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*("-" if v is None else str(_json_value(v)) for v in row))
    console().print(table)


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# --- context ---------------------------------------------------------------------------------


def runtime() -> Runtime:
    return get_runtime()


def read_data_option(value: str) -> Any:
    """``--data`` takes JSON text or ``@file.json``."""
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--data") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--data") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="baremeds-webhook-dispatcher", prog_name="dispatcher")
def cli() -> None:
    """Baremeds outgoing webhooks: dispatch events, run workers, read and re-send the transaction log.

    Configuration comes from the YAML file named by DISPATCHER_CONFIG (else ./config.yaml);
    DISPATCHER_REDIS_URL and DISPATCHER_DATABASE_URL override it.
    """


# --- send / sample ---------------------------------------------------------------------------


@cli.command()
@click.argument("event", type=click.Choice(events.EVENT_NAMES), metavar="EVENT")
@click.option("--data", "data_text", help="The event's data: JSON text or @file.json.")
@click.option("--sample", is_flag=True, help="Send the seed's example data for EVENT.")
@click.option("--dispatched-by", default="SYSTEM", show_default=True, help="metadata.dispatched_by")
@click.option("--endpoint", "endpoints", multiple=True, help="Send only to this endpoint (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the request ids as a JSON array.")
def send(
    event: str,
    data_text: str | None,
    sample: bool,
    dispatched_by: str,
    endpoints: tuple[str, ...],
    as_json: bool,
) -> None:
    """Dispatch EVENT and print one request id per delivery.

    EVENT is one of:"""
    if sample == (data_text is not None):
        raise click.UsageError("give exactly one of --data JSON|@file.json or --sample")
    data = events.get_event(event).example() if sample else read_data_option(data_text or "")
    from .dispatch import dispatch

    request_ids = dispatch(event, data, dispatched_by=dispatched_by, endpoints=list(endpoints) or None)
    if as_json:
        click.echo(json.dumps(request_ids))
    elif not request_ids:
        click.echo(f"no endpoint subscribes to {event}; nothing was sent", err=True)
    else:
        for request_id in request_ids:
            click.echo(request_id)


send.help = (send.help or "") + ", ".join(events.EVENT_NAMES) + "."


@cli.command()
@click.argument("event", type=click.Choice(events.EVENT_NAMES), metavar="EVENT")
def sample(event: str) -> None:
    """Print the seed's example data for EVENT (valid input for `send --data`)."""
    click.echo(json.dumps(events.get_event(event).example(), indent=2))


# --- log -------------------------------------------------------------------------------------


@cli.group()
def log() -> None:
    """Read the transaction log."""


class MomentType(click.ParamType):
    """An ISO 8601 time (``Z``/offset; naive is UTC) or an age before now: ``30m``, ``2h``, ``7d``, ``45s``."""

    name = "TIME"
    UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        match = re.fullmatch(r"(\d+)\s*([smhdw])", text)
        if match:
            return datetime.now(UTC) - timedelta(seconds=int(match.group(1)) * self.UNITS[match.group(2)])
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            self.fail(f"{text!r} is neither an ISO 8601 time nor an age like 30m, 2h, 7d", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


MOMENT = MomentType()


@log.command("list")
@click.option("--event", type=click.Choice(events.EVENT_NAMES), help="Only this event.")
@click.option("--status", type=click.Choice(STATUSES), help="Only deliveries in this status.")
@click.option("--endpoint", help="Only deliveries to this endpoint.")
@click.option("--request-id", help="Only this delivery.")
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
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List deliveries, newest first. Times are UTC."""
    rows = store.list_deliveries(
        runtime().engine,
        event=event,
        status=status,
        endpoint=endpoint,
        request_id=request_id,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
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
        [
            [
                r["request_id"],
                r["event"],
                r["endpoint"],
                r["status"],
                r["attempts"],
                r["last_http_status"],
                r["created_at"],
                r["updated_at"],
            ]
            for r in rows
        ],
    )


def delivery_document(engine: Any, request_id: str) -> dict[str, Any]:
    delivery = store.get_delivery(engine, request_id)
    if delivery is None:
        raise DeliveryNotFound(request_id)
    document = {name: delivery[name] for name in store.DELIVERY_FIELDS}
    document.update(
        {
            "url": delivery["url"],
            "reason": delivery["reason"],
            "next_attempt_at": delivery["next_attempt_at"],
            "replay_of": delivery["replay_of"],
            "payload": json.loads(delivery["payload"]),
        }
    )
    document["attempts"] = [
        {name: attempt[name] for name in store.ATTEMPT_FIELDS}
        for attempt in store.list_attempts(engine, request_id)
    ]
    document["attempt_count"] = delivery["attempts"]
    return document


@log.command("show")
@click.argument("request_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def log_show(request_id: str, as_json: bool) -> None:
    """Show a delivery and every attempt."""
    document = delivery_document(runtime().engine, request_id)
    if as_json:
        click.echo(to_json(document))
        return
    out = console()
    summary = [
        ("request_id", document["request_id"]),
        ("event", document["event"]),
        ("endpoint", f"{document['endpoint']} ({document['url']})"),
        ("status", document["status"]),
        ("attempts", document["attempt_count"]),
        ("last_http_status", document["last_http_status"]),
        ("next_attempt_at", document["next_attempt_at"]),
        ("reason", document["reason"]),
        ("replay_of", document["replay_of"]),
        ("created_at", document["created_at"]),
        ("updated_at", document["updated_at"]),
    ]
    for name, value in summary:
        if value is not None:
            out.print(f"[bold]{name:>17}[/bold]  {_json_value(value)}", highlight=False)
    out.print("\n[bold]payload[/bold]")
    out.print(json.dumps(document["payload"], indent=2, ensure_ascii=False), highlight=False, markup=False)
    print_table(
        ("#", "retry", "outcome", "http", "duration_ms", "next_attempt_at", "created_at (UTC)", "error"),
        [
            [
                a["attempt"],
                a["retry"],
                a["outcome"],
                a["http_status"],
                a["duration_ms"],
                a["next_attempt_at"],
                a["created_at"],
                a["error"],
            ]
            for a in document["attempts"]
        ],
        title="attempts",
    )
    for a in document["attempts"]:
        if a["response_body"]:
            out.print(f"[bold]response to attempt {a['attempt']}[/bold]: ", end="", highlight=False)
            out.print(a["response_body"], highlight=False, markup=False)


# --- workers and maintenance -----------------------------------------------------------------


@cli.command()
@click.option("--burst", is_flag=True, help="Exit when nothing is queued.")
@click.option("--name", help="Worker name (default: host.pid.random); with --concurrency, the names' prefix.")
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Run this many worker processes under one supervisor (a dead one is replaced).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, MAX_WORKER_THREADS),
    help="POSTs each worker process keeps in flight at once (default: worker.threads, 16).",
)
def worker(burst: bool, name: str | None, concurrency: int, threads: int | None) -> None:
    """Run a worker on the configured queue, with the scheduler."""
    settings = load_settings()  # a bad config stops here, before any process starts
    if threads is not None:
        settings = dataclasses.replace(settings, worker_threads=threads)
    if concurrency == 1:
        from .worker import run_worker

        run_worker(settings, burst=burst, name=name)
        return
    from .logs import setup_process_log
    from .supervisor import Supervisor, default_base_name

    setup_process_log(settings.process_log, settings.process_log_retention_days, settings.secrets())
    sys.exit(Supervisor(concurrency, name or default_base_name(), burst=burst, threads=threads).run())


@cli.command("reconcile")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def reconcile_command(as_json: bool) -> None:
    """Re-queue deliveries whose job is gone from Redis, and recover ones a dead worker held."""
    from .reconcile import reconcile

    report = reconcile(runtime())
    if as_json:
        click.echo(to_json(report.as_dict()))
        return
    click.echo(
        f"checked {report.checked} unfinished deliveries: {len(report.requeued)} re-queued, "
        f"{len(report.abandoned)} recovered from dead workers, {len(report.overdue)} overdue retries moved"
    )
    for request_id in report.abandoned:
        click.echo(f"  recovered  {request_id}")
    for request_id in report.requeued:
        click.echo(f"  re-queued  {request_id}")
    for request_id in report.overdue:
        click.echo(f"  overdue    {request_id}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=int)
@click.option("--key", default="xxx", show_default=True, help="The X-Webhook-Key to accept.")
@click.option("--signing-secret", help="Also verify Standard Webhooks signatures with this whsec_ secret.")
def receiver(host: str, port: int, key: str, signing_secret: str | None) -> None:
    """Run the reference partner endpoint (accepts any path; dedupes on request_id)."""
    from .receiver import ReceiverServer, ReceiverState

    def show(received: Any) -> None:
        click.echo(f"{received.event:<28} {received.request_id}  retry={str(received.retry).lower()}")

    if signing_secret:
        from .signing import decode_secret

        try:
            decode_secret(signing_secret)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--signing-secret") from None
    server = ReceiverServer(host, port, ReceiverState(key=key, signing_secret=signing_secret, on_event=show))
    click.echo(f"receiving on http://{host}:{server.server_address[1]}/ (any path); Ctrl-C stops", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the demo's database and log in storage/demo.")
def demo(keep: bool) -> None:
    """Run the whole path on this machine: receiver, six seed events, a retry, a worker, the log."""
    from .demo import run_demo

    sys.exit(run_demo(keep=keep))


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
def config_check() -> None:
    """Load and validate the configuration; print the effective settings with keys masked."""
    settings = load_settings()
    click.echo(to_json(masked_settings(settings)))
    problems = production_warnings(settings)
    for problem in problems:
        click.echo(f"error: config: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo(
        f"config ok ({len(settings.endpoints)} endpoints, environment {settings.environment})", err=True
    )


def masked_settings(settings: Settings) -> dict[str, Any]:
    from dataclasses import asdict

    document = asdict(settings)
    for endpoint in document["endpoints"]:
        endpoint["key"] = "xxx (default)" if not endpoint.pop("key_configured") else "****"
        endpoint["signing_secrets"] = ["whsec_****"] * len(endpoint["signing_secrets"])
    document["database_url"] = store.safe_url(settings.database_url)
    return document


# --- entry point -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: turns expected errors into one line on stderr."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="dispatcher", standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", 1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DispatcherError as exc:
        fail(str(exc))
    except redis.exceptions.ConnectionError as exc:
        url = _redis_url_for_message()
        fail(f"Redis at {url} is unreachable ({exc}); start it or set DISPATCHER_REDIS_URL")
    except redis.RedisError as exc:
        fail(f"Redis error: {exc}")
    except SQLAlchemyError as exc:
        fail(f"database error: {store.describe_error(exc)}")


def _redis_url_for_message() -> str:
    try:
        return get_runtime().settings.redis_url
    except Exception:  # noqa: BLE001
        return "(configured URL)"


def _register_commands() -> None:
    from .commands import register_all

    register_all(cli)


_register_commands()


if __name__ == "__main__":
    main()
