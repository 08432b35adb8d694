"""``dispatcher endpoints add|edit|show|pause|resume|rotate-key|rotate-secret|remove|import``:
operators change the endpoints in the database while workers run, each change checked as the
file's endpoints are, audited, and taken by running workers within seconds. The doors are
:mod:`dispatcher.ops.endpoint_admin`'s; the setting options :mod:`.endpoint_options`'; this
module parses, asks and prints. A bad setting is one line naming it, exit 2, nothing changed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .doors import carried_out
from .endpoint_options import key_given, setting_options, settings_given
from .output import confirm, deliveries, fail, print_table, say, to_json

if TYPE_CHECKING:
    from ..errors import ConfigError
    from ..ops.door import Door, Plan
    from ..runtime import Runtime

LIVE = "running workers take it within seconds"


def setting_error(exc: ConfigError) -> NoReturn:
    """A bad setting: one line naming it, exit 2."""
    fail(f"{exc.setting}: {exc.problem}", 2)


def _given(given: dict[str, Any]) -> dict[str, Any]:
    from ..errors import ConfigError

    try:
        return settings_given(given)
    except ConfigError as exc:
        setting_error(exc)


def planned(runtime: Runtime, door: Door[Any]) -> Plan:
    """The door's plan; a bad setting or a name in use ends the command with exit 2."""
    from ..errors import ConfigError
    from ..store.endpoint_catalog import EndpointExists

    try:
        return door.plan(runtime)
    except ConfigError as exc:
        setting_error(exc)
    except EndpointExists as exc:
        fail(str(exc), 2)


def grace_seconds(text: str | None) -> int | None:
    """``--grace``: ``15s``, ``30m``, ``24h``, ``0`` (none), in whole seconds."""
    from ..times import parse_duration

    if text is None:
        return None
    if text.strip() in ("0", "0s"):
        return 0
    try:
        return round(parse_duration(text))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--grace") from None


@click.command("add")
@click.argument("name")
@setting_options
def add(name: str, **given: Any) -> None:
    """Add endpoint NAME: --url and any other setting, named as in the file (see --help)."""
    from ..ops.endpoint_admin import Add
    from ..runtime import get_runtime

    runtime = get_runtime()
    door = Add({"name": name, **_given(given)})
    carried_out(runtime, door, planned(runtime, door), None)
    say(f"{name}: added; {LIVE}")


@click.command("edit")
@click.argument("name")
@setting_options
@click.option(
    "--unset", multiple=True, metavar="KEY", help="Back to its default (a file name or dotted path)."
)
def edit(name: str, unset: tuple[str, ...], **given: Any) -> None:
    """Change settings of endpoint NAME (the options of add, and --unset)."""
    from ..ops.endpoint_admin import Edit
    from ..runtime import get_runtime

    changes = _given(given)
    if not changes and not unset:
        raise click.UsageError(
            "name a setting to change (--url, --max-attempts, --set KEY=YAML, --unset KEY, ...)"
        )
    runtime = get_runtime()
    door = Edit(name, changes, tuple(unset))
    plan = planned(runtime, door)
    if door.nothing_to_do(plan):
        say(f"{name}: nothing changed (the values given are those stored)")
        return
    done = carried_out(runtime, door, plan, None)
    say(f"{name}: changed {', '.join(done.settings)}; {LIVE}")


def _shown(value: Any) -> Any:
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, ensure_ascii=False)
    return value


def _state(view: dict[str, Any]) -> str:
    words = []
    if view["disabled"]:
        words.append(f"disabled ({view['reason']})")
    if view["paused"]:
        words.append("paused")
    return ", ".join(words) or "enabled"


@click.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def show(name: str, as_json: bool) -> None:
    """Endpoint NAME: its settings (secrets masked), state and pending deliveries."""
    from ..ops.endpoint_admin import endpoint_view
    from ..runtime import get_runtime

    view = endpoint_view(get_runtime(), name)
    if as_json:
        click.echo(to_json(view))
        return
    rows: list[list[Any]] = [
        ["state", _state(view)],
        ["breaker", view["breaker"]],
        ["pending", view["pending"]],
        ["signing secrets retiring at", ", ".join(map(str, view["retiring_signing_secrets"])) or None],
        ["updated at", view["updated_at"]],
    ]
    rows += [[key, _shown(value)] for key, value in view["settings"].items() if key != "name"]
    print_table(("setting", "value"), rows, title=f"endpoint {name}")


@click.command("pause")
@click.argument("name")
def pause(name: str) -> None:
    """Pause NAME: its deliveries wait (recorded, queued for later, no attempt used)."""
    from ..ops.endpoint_admin import Pause
    from ..runtime import get_runtime

    runtime = get_runtime()
    door = Pause(name)
    plan = planned(runtime, door)
    done = carried_out(runtime, door, plan, None)
    if not done.changed:
        say(f"{name}: already paused")
        return
    say(
        f"{name}: paused; its deliveries wait ({plan.count:,} pending) until `dispatcher endpoints resume {name}`"
    )


@click.command("resume")
@click.argument("name")
def resume(name: str) -> None:
    """Resume NAME: its waiting deliveries go on, in dispatch order."""
    from ..ops.endpoint_admin import Resume
    from ..runtime import get_runtime

    runtime = get_runtime()
    door = Resume(name)
    done = carried_out(runtime, door, planned(runtime, door), None)
    state = "resumed" if done.changed else "was not paused"
    say(f"{name}: {state}; {deliveries(done.woken, 'waiting')} sent to the queue")


@click.command("rotate-key")
@click.argument("name")
@click.option("--key-stdin", is_flag=True, help="Read the new key from the first line of stdin.")
@click.option("--key-env", metavar="VAR", help="Read the new key from environment variable VAR.")
@click.option("--grace", metavar="DURATION", help="Accepted for symmetry; the key is sent at once.")
def rotate_key(name: str, key_stdin: bool, key_env: str | None, grace: str | None) -> None:
    """Give NAME a new X-Webhook-Key (--key-stdin or --key-env); sent from the next attempt on."""
    from ..errors import ConfigError
    from ..ops.endpoint_admin import RotateKey
    from ..runtime import get_runtime

    try:
        key = key_given(key_env, key_stdin)
    except ConfigError as exc:
        setting_error(exc)
    if key is None:
        raise click.UsageError("give the new key with --key-stdin or --key-env VAR")
    runtime = get_runtime()
    door = RotateKey(name, key, grace_seconds(grace))
    carried_out(runtime, door, planned(runtime, door), None)
    ignored = " (the grace does not apply to it)" if grace is not None else ""
    say(f"{name}: key rotated; X-Webhook-Key carries one value, so the new key is sent at once{ignored}")


@click.command("rotate-secret")
@click.argument("name")
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="How long the old secret also signs; 0: not at all.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document (it holds the new secret).")
def rotate_secret(name: str, grace: str, as_json: bool) -> None:
    """Give NAME a new signing secret, printed once; the old one signs beside it for --grace."""
    from ..ops.endpoint_admin import RotateSecret
    from ..runtime import get_runtime
    from ..times import format_utc

    runtime = get_runtime()
    door = RotateSecret(name, grace_seconds(grace) or 0)
    done = carried_out(runtime, door, planned(runtime, door), None)
    if as_json:
        click.echo(to_json(done.as_dict()))
        return
    click.echo(f"new signing secret of {name} (shown once; give it to the partner): {done.secret}")
    if done.retiring_until is not None:
        until = format_utc(done.retiring_until)
        click.echo(f"the old secret signs beside it until {until} (two v1 signatures), then only the new one")
    else:
        click.echo("only the new secret signs from now on")


@click.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True, help="Fail its pending deliveries (endpoint_removed) and remove it.")
@click.option("--yes", is_flag=True, help="Do not ask.")
def remove(name: str, force: bool, yes: bool) -> None:
    """Remove NAME; its deliveries stay in the log. Refused while any are pending, unless --force."""
    from ..ops.endpoint_admin import EndpointBusy, Remove
    from ..runtime import get_runtime

    runtime = get_runtime()
    door = Remove(name, force=force)
    plan = planned(runtime, door)
    pending = plan.count or 0
    if pending and not force:
        fail(str(EndpointBusy(name, pending)))
    say(plan.description)
    if not yes:
        failing = f" and fail its {deliveries(pending, 'pending')}" if pending else ""
        confirm(f"remove endpoint {name}{failing}?")
    done = carried_out(runtime, door, plan, None)
    failed = f"; {deliveries(done.failed, 'pending')} failed (endpoint_removed)" if done.failed else ""
    say(f"{name}: removed{failed}; its deliveries stay in the log")


def _file_definitions(runtime: Runtime, file: Path | None) -> tuple[list[dict[str, Any]], str]:
    """The endpoints of ``file`` (a configuration file), or of the configuration in use, as the
    file writes them; and where they came from."""
    from ..config import config_path, load_settings
    from ..config.endpoint_records import endpoint_definition
    from ..errors import ConfigError

    if file is None:
        endpoints, delivery = runtime.file_endpoints or (), runtime.settings.delivery
        source = str(config_path() or "the configuration")
    else:
        try:
            settings = load_settings(file)
        except ConfigError as exc:
            setting_error(exc)
        endpoints, delivery, source = settings.endpoints, settings.delivery, str(file)
    # an endpoint without overrides of its own runs with its file's delivery settings: written out
    return [
        endpoint_definition(replace(e, delivery=e.delivery or delivery), runtime.settings.delivery)
        for e in endpoints
    ], source


PLAN_LINES = {
    True: (("added", "add"), ("changed", "rewrite"), ("removed", "remove"), ("unchanged", "unchanged")),
    False: (
        ("added", "add"),
        ("changed", "differs, kept"),
        ("removed", "in the database only, kept"),
        ("unchanged", "unchanged"),
    ),
}


@click.command("import")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Make the database match the file (the plan is shown first).")
@click.option("--yes", is_flag=True, help="Do not ask.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def import_endpoints(file: Path | None, replace: bool, yes: bool, as_json: bool) -> None:
    """Import the configuration's endpoints (or FILE's) into the database: add those it lacks;
    with --replace, rewrite those that differ and remove those the file does not list."""
    from ..ops.door import Actor
    from ..ops.endpoint_admin import Import
    from ..runtime import get_runtime

    runtime = get_runtime()
    definitions, source = _file_definitions(runtime, file)
    door = Import(definitions, replace, source)
    plan = planned(runtime, door)
    for key, label in PLAN_LINES[replace]:
        if plan.details[key]:
            say(f"{label}: {', '.join(plan.details[key])}", as_json)
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)
    if door.nothing_to_do(plan):
        done = door.preview(runtime, Actor.cli(), plan, dry_run=False)
        say("nothing to import: the database already holds these endpoints", as_json)
    else:
        if replace and not yes:
            confirm("make the database's endpoints match the file?")
        done = carried_out(runtime, door, plan, None)
        say(f"{plan.description} {LIVE[0].upper()}{LIVE[1:]}.", as_json)
    if as_json:
        listed = {key: list(plan.details[key]) for key, _ in PLAN_LINES[replace]}
        click.echo(to_json({"plan": listed, "done": done.as_dict()}))


COMMANDS = (add, edit, show, pause, resume, rotate_key, rotate_secret, remove, import_endpoints)
