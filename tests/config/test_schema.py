"""The configuration file's JSON Schema: what ``dispatcher config schema`` prints, committed as
config.schema.json (never stale), and both example files valid against it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from dispatcher.cli import cli
from dispatcher.config import config_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "config.schema.json"
EXAMPLE = ROOT / "config.example.yaml"
PRODUCTION_EXAMPLE = ROOT / "config.production.example.yaml"


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(config_schema())


def test_config_schema_json_is_what_the_command_prints() -> None:
    result = CliRunner().invoke(cli, ["config", "schema"], catch_exceptions=False)
    assert result.exit_code == 0
    assert SCHEMA_FILE.read_text(encoding="utf-8") == result.output, (
        "config.schema.json is stale: dispatcher config schema > config.schema.json"
    )
    assert json.loads(result.output) == config_schema()


def test_the_schema_is_a_2020_12_schema() -> None:
    schema = config_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("example", [EXAMPLE, PRODUCTION_EXAMPLE], ids=lambda path: path.name)
def test_the_examples_name_the_schema_and_are_valid_against_it(example: Path) -> None:
    text = example.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=./config.schema.json\n")
    errors = [error.message for error in validator().iter_errors(yaml.safe_load(text))]
    assert errors == []


def test_the_schema_describes_the_file_not_the_program() -> None:
    schema = config_schema()
    top, defs = schema["properties"], schema["$defs"]
    assert set(top) == {
        "source", "environment", "redis_url", "database_url", "queue_name", "process_log",
        "process_log_retention_days", "delivery", "endpoints", "allow_networks", "metrics", "worker",
        "retention", "idempotency_ttl", "storage_keys", "search_key", "console", "alerts", "api",
        "telemetry",
    }  # fmt: skip
    endpoint = defs["EndpointFile"]["properties"]
    assert "signing_secret" in endpoint and "key_configured" not in endpoint
    assert defs["WorkerFile"]["properties"]["threads"] == {
        "default": 16,
        "description": defs["WorkerFile"]["properties"]["threads"]["description"],
        "maximum": 64,
        "minimum": 1,
        "type": "integer",
    }
    assert defs["DisableAfterFile"]["properties"]["window"]["default"] == "5d"
    assert top["delivery"]["description"] and all(p.get("description") for p in endpoint.values())


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"endpoints": [{"name": "a", "url": "https://a.example.com", "signing_secret": "whsec_QUJD"}]},
        {"endpoints": [{"name": "a", "url": "https://a.example.com", "signing_secret": ["whsec_QUJD"]}]},
        {"delivery": {"backoff": [10, 60]}},
        {"delivery": {"backoff": {"base": 5, "jitter": 0}}},
        {
            "endpoints": [
                {"name": "a", "url": "https://a.example.com", "disable_after": {"failed_deliveries": 3}}
            ]
        },
        {
            "endpoints": [
                {
                    "name": "a",
                    "url": "https://a",
                    "disable_after": {"failed_deliveries": 3, "window": "1h 30m"},
                }
            ]
        },
        {"metrics": {"port": 9108, "host": "0.0.0.0", "port_range": 16}, "worker": {"threads": 8}},
        {"search_key": "k" * 32},
    ],
)
def test_the_schema_accepts_every_form_the_file_takes(document: dict) -> None:
    assert [error.message for error in validator().iter_errors(document)] == []


@pytest.mark.parametrize(
    "document",
    [
        {"sources": "x"},
        {"delivery": {"timeout": "thirty"}},
        {"delivery": {"backoff": "linear"}},
        {"delivery": {"backoff": []}},
        {"delivery": {"retry_4xx": [500]}},
        {"endpoints": [{"name": "a"}]},
        {"endpoints": [{"name": "a", "url": "https://a", "events": ["order_shipped"]}]},
        {"endpoints": [{"name": "a", "url": "https://a", "key": "trailing "}]},
        {"endpoints": [{"name": "a", "url": "https://a", "disable_after": {"window": "5d"}}]},
        {
            "endpoints": [
                {"name": "a", "url": "https://a", "disable_after": {"failed_deliveries": 1, "window": "soon"}}
            ]
        },
        {"worker": {"threads": 65}},
        {"metrics": {"port": 0}},
        {"search_key": "k" * 31},
        {"search_key": "k" * 31 + "\u00e9"},
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(document: dict) -> None:
    assert list(validator().iter_errors(document)) != []
