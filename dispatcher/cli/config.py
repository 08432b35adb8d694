"""``dispatcher config check``: validate the configuration and show it with every secret masked,
and warn where the file's endpoints differ from the database's (which are in force once
imported); ``dispatcher config schema``: the configuration file's JSON Schema, for editors."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from .output import fail, plural, to_json

if TYPE_CHECKING:
    from ..config import Settings


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@click.option("--strict", is_flag=True, help="Also exit non-zero on any warning (for deploy scripts).")
def config_check(strict: bool) -> None:
    """Load and validate the configuration; print the effective settings, named as the file names
    them, with keys masked. Warns about every endpoint address the sender will refuse (add its
    network to allow_networks) or cannot resolve, and about endpoints on the default key xxx.
    Reads every credential file an endpoint names (client certificate and key, CA bundle,
    private_key_jwt key): one that cannot be used fails the check; a certificate expiring
    within 30 days is a warning. Once the database holds the endpoints, warns about each one the
    file lists that the database lacks or holds otherwise (a database that does not answer is
    said in one line, and the check goes on)."""
    from ..config import load_settings, production_warnings

    settings = load_settings()
    click.echo(to_json(masked_settings(settings)))
    problems = production_warnings(settings)
    unusable, credential_warnings = credential_problems(settings)
    differences, unanswered = endpoint_differences(settings)
    warnings = check_warnings(settings, refused=problems) + credential_warnings + differences
    if unanswered is not None:
        click.echo(f"note: {unanswered}", err=True)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    for problem in problems:
        click.echo(f"error: config: {problem}", err=True)
    for line in unusable:
        click.echo(f"error: {line}", err=True)
    if problems or unusable:
        sys.exit(1)
    if strict and warnings:
        fail(f"{plural(len(warnings), 'warning')} (--strict)")
    endpoints = plural(len(settings.endpoints), "endpoint")
    noted = f"; {plural(len(warnings), 'warning')}" if warnings else ""
    click.echo(f"config ok ({endpoints}, environment {settings.environment}{noted})", err=True)


def check_warnings(settings: Settings, refused: Sequence[str] = ()) -> list[str]:
    """What ``config check`` warns about: endpoint addresses the sender will refuse or cannot
    resolve, endpoints on the default key (unless ``refused`` already names them), and telemetry
    asked for where OpenTelemetry is not installed."""
    from ..config import default_key_warnings
    from ..sending.preflight import endpoint_warnings
    from ..telemetry import warnings as telemetry_warnings

    keys = [w for w in default_key_warnings(settings) if w not in refused]
    return endpoint_warnings(settings) + keys + telemetry_warnings(settings.telemetry)


def endpoint_differences(settings: Settings) -> tuple[list[str], str | None]:
    """The file's endpoints that the database lacks or holds otherwise, one line each (none
    before they were first imported, or when the database is not made yet: nothing is created
    here); and, when the database did not answer, a line saying so."""
    from pathlib import Path

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from ..errors import DispatcherError
    from ..ops.endpoint_admin import file_differences
    from ..runtime import Runtime
    from ..store import create_store_engine, describe_error
    from ..store.versioning import current

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).exists()):
        return [], None
    runtime = Runtime(settings)
    try:
        runtime.engine = create_store_engine(settings.database_url, runtime.keyring, check_schema=False)
        state = current(runtime.engine)
        if state.kind != "current":
            return [], f"endpoints not compared with the database: it is {state.describe()}"
        return file_differences(runtime), None
    except SQLAlchemyError as exc:
        return [], f"endpoints not compared with the database: {describe_error(exc)}"
    except DispatcherError as exc:
        return [], f"endpoints not compared with the database: {exc}"
    finally:
        runtime.close()


def credential_problems(settings: Settings) -> tuple[list[str], list[str]]:
    """(errors, warnings) about every endpoint's credential files: client certificates and their
    keys, CA bundles, private_key_jwt keys (:mod:`dispatcher.sending.credentials`)."""
    from datetime import UTC, datetime

    from ..sending.credentials import settings_credential_problems

    return settings_credential_problems(settings, datetime.now(UTC))


@config_group.command("schema")
def config_schema_command() -> None:
    """Print the JSON Schema (2020-12) of the configuration file: every key, its type, default and
    meaning, so an editor completes and checks config.yaml (config.schema.json is this output)."""
    from ..config import config_schema

    click.echo(json.dumps(config_schema(), indent=2, ensure_ascii=False))


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The settings as a document keyed as the file is, with keys, signing secrets, storage and
    search keys, console secrets and the Redis and database passwords masked."""
    from ..config.document import settings_document

    return settings_document(settings)
