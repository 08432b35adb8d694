"""The CLI in-process (click's runner) against the real Redis and SQLite."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner

from dispatcher import events, store
from dispatcher.cli import cli
from dispatcher.dispatch import dispatch


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _age(runtime, request_id: str, hours: float) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id == request_id)
            .values(created_at=store.utcnow() - timedelta(hours=hours))
        )


def test_log_list_filters_and_paging(make_runtime, receiver):
    runtime = make_runtime(
        endpoints=[
            {"name": "partner-a", "url": receiver.url, "key": "ka-1"},
            {"name": "partner-b", "url": receiver.url, "key": "kb-1", "events": ["order_changed"]},
        ]
    )
    example = events.CATALOGUE["order_changed"].example()
    old_a, old_b = dispatch("order_changed", example)
    new_a, new_b = dispatch("order_changed", example)
    (case_a,) = dispatch(
        "case_assigned_to_clinician", events.CATALOGUE["case_assigned_to_clinician"].example()
    )
    _age(runtime, old_a, 48)
    _age(runtime, old_b, 48)

    def ids(*args: str) -> list[str]:
        result = invoke("log", "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return [row["request_id"] for row in json.loads(result.output)]

    assert set(ids()) == {old_a, old_b, new_a, new_b, case_a}
    assert set(ids("--endpoint", "partner-b")) == {old_b, new_b}
    assert set(ids("--since", "24h")) == {new_a, new_b, case_a}
    assert set(ids("--until", "1d")) == {old_a, old_b}
    assert ids("--request-id", case_a) == [case_a]
    page1, page2 = ids("--limit", "2"), ids("--limit", "2", "--offset", "2")
    assert len(page1) == 2 and len(page2) == 2 and not set(page1) & set(page2)
    assert set(ids("--since", (store.utcnow() - timedelta(hours=1)).isoformat())) == {new_a, new_b, case_a}


def test_bad_duration_is_a_clear_usage_error(make_runtime):
    make_runtime()
    result = CliRunner().invoke(cli, ["log", "list", "--since", "yesterday"])
    assert result.exit_code == 2
    assert "'yesterday' is neither an ISO 8601 time nor an age like 30m, 2h, 7d" in result.output


def test_config_check_masks_keys(write_config, receiver, monkeypatch):
    from dispatcher.signing import generate_secret

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
    from dispatcher.errors import ConfigError

    result = CliRunner().invoke(cli, ["config", "check"])
    assert isinstance(result.exception, ConfigError) and "endpoints[0].url" in str(result.exception)


def test_worker_threads_out_of_range_is_refused_naming_the_option(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from dispatcher.cli import cli

    monkeypatch.chdir(tmp_path)  # no config.yaml here: the defaults
    result = CliRunner().invoke(cli, ["worker", "--threads", "65"])
    assert result.exit_code == 2
    assert "--threads" in result.output and "65" in result.output
