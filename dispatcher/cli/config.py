"""``dispatcher config check``: validate the configuration and show it with every secret masked;
``dispatcher config schema``: the configuration file's JSON Schema, for editors."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from .output import to_json

if TYPE_CHECKING:
    from ..config import Settings


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
def config_check() -> None:
    """Load and validate the configuration; print the effective settings with keys masked."""
    from ..config import load_settings, production_warnings

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


@config_group.command("schema")
def config_schema_command() -> None:
    """Print the JSON Schema (2020-12) of the configuration file: every key, its type, default and
    meaning, so an editor completes and checks config.yaml (config.schema.json is this output)."""
    from ..config import config_schema

    click.echo(json.dumps(config_schema(), indent=2, ensure_ascii=False))


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The settings as a document, with keys, signing secrets, storage keys and the Redis and
    database passwords masked."""
    from ..redaction import mask_url

    document = asdict(settings)
    for endpoint in document["endpoints"]:
        endpoint["key"] = "xxx (default)" if not endpoint.pop("key_configured") else "****"
        endpoint["signing_secrets"] = ["whsec_****"] * len(endpoint["signing_secrets"])
    document["storage_keys"] = ["****"] * len(settings.storage_keys)
    document["redis_url"] = mask_url(settings.redis_url)
    document["database_url"] = mask_url(settings.database_url)
    return document
