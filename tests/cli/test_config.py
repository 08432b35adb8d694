"""``dispatcher config check`` and ``config schema`` in-process (click's runner): the effective
settings with every secret masked, a bad setting as one line naming it, and the file's JSON Schema."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dispatcher.cli import cli
from tests.cli.helpers import invoke


def test_config_check_masks_keys(write_config, receiver, monkeypatch):
    from dispatcher.contract.signing import generate_secret

    secret = generate_secret()
    endpoint = {
        "name": "partner-a",
        "url": receiver.url,
        "key": "super-secret-key-9",
        "signing_secret": secret,
    }
    config = write_config(endpoints=[endpoint])
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))
    result = invoke("config", "check")
    assert result.exit_code == 0
    assert "partner-a" in result.output
    assert secret not in result.output and secret[6:] not in result.output
    assert "super-secret-key-9" not in result.output and '"key": "****"' in result.output


def test_config_check_fails_in_production_on_the_default_key(tmp_path, monkeypatch):
    config = tmp_path / "prod.yaml"
    config.write_text(
        "environment: production\nendpoints:\n  - name: p\n    url: https://p.example.com/hook\n"
    )
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 1
    assert "endpoints[0].key: endpoint 'p' uses the default key xxx" in result.output


def test_config_check_names_a_bad_setting(tmp_path, monkeypatch):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "environment: production\nendpoints:\n  - name: p\n    url: http://p.example.com/hook\n    key: k\n"
    )
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))

    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 1 and "error: config: endpoints[0].url" in result.output


def test_config_check_masks_the_redis_and_database_passwords(write_config, monkeypatch):
    config = write_config(
        redis_url="redis://default:redis-pw-31337@127.0.0.1:6379/13",
        database_url="postgresql+psycopg://hooks:db-pw-31337@127.0.0.1:5432/hooks",
    )
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))
    monkeypatch.setenv("DISPATCHER_REDIS_URL", "rediss://u:env-pw-31337@cache.internal:6380/2")
    result = invoke("config", "check")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert "31337" not in result.output
    assert document["redis_url"] == "rediss://u:****@cache.internal:6380/2"
    assert document["database_url"] == "postgresql+psycopg://hooks:****@127.0.0.1:5432/hooks"


def test_config_check_refuses_credentials_in_an_endpoint_url_without_showing_them(tmp_path, monkeypatch):
    config = tmp_path / "creds.yaml"
    config.write_text(
        "environment: staging\nendpoints:\n  - name: p\n    url: https://user:url-pw-31337@p.example.com/hook\n"
    )
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 1
    assert "31337" not in result.output
    assert "error: config: endpoints[0].url: must not carry credentials (user:password@)" in result.output


def test_config_check_on_a_yaml_bomb_is_one_line(tmp_path, monkeypatch):
    lines = ['l0: &l0 ["lol"]'] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    config = tmp_path / "bomb.yaml"
    config.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "more than 100000 values" in result.output


def test_config_schema_prints_the_files_json_schema_without_reading_the_file(tmp_path, monkeypatch):
    broken = tmp_path / "broken.yaml"
    broken.write_text("delivery: {timeout: thirty}\n")
    monkeypatch.setenv("DISPATCHER_CONFIG", str(broken))  # the schema does not depend on it
    result = CliRunner().invoke(cli, ["config", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["worker"]["$ref"] == "#/$defs/WorkerFile"
