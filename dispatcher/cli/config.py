"""``dispatcher config check``: validate the configuration and show it with every secret masked;
``dispatcher config schema``: the configuration file's JSON Schema, for editors."""

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
    within 30 days is a warning."""
    from ..config import load_settings, production_warnings

    settings = load_settings()
    click.echo(to_json(masked_settings(settings)))
    problems = production_warnings(settings)
    unusable, credential_warnings = credential_problems(settings)
    warnings = check_warnings(settings, refused=problems) + credential_warnings
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
    resolve, and endpoints on the default key (unless ``refused`` already names them)."""
    from ..config import default_key_warnings
    from ..sending.preflight import endpoint_warnings

    return endpoint_warnings(settings) + [w for w in default_key_warnings(settings) if w not in refused]


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
