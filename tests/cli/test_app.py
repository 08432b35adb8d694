"""The CLI in-process (click's runner) against the real Redis and SQLite."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from dispatcher import dispatch, store
from dispatcher.cli import cli
from dispatcher.contract import catalogue as events
from dispatcher.times import utcnow


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _age(runtime, request_id: str, hours: float) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id == request_id)
            .values(created_at=utcnow() - timedelta(hours=hours))
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
    assert set(ids("--since", (utcnow() - timedelta(hours=1)).isoformat())) == {new_a, new_b, case_a}


def test_bad_duration_is_a_clear_usage_error(make_runtime):
    make_runtime()
    result = CliRunner().invoke(cli, ["log", "list", "--since", "yesterday"])
    assert result.exit_code == 2
    assert "'yesterday' is neither an ISO 8601 time nor an age like 30m, 2h, 7d" in result.output


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


def test_worker_threads_out_of_range_is_refused_naming_the_option(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from dispatcher.cli import cli

    monkeypatch.chdir(tmp_path)  # no config.yaml here: the defaults
    result = CliRunner().invoke(cli, ["worker", "--threads", "65"])
    assert result.exit_code == 2
    assert "--threads" in result.output and "65" in result.output


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


def test_unreachable_redis_is_one_line_without_its_password(make_runtime):
    make_runtime(redis_url="redis://default:redis-pw-31337@127.0.0.1:1/13")  # nothing listens on port 1
    result = CliRunner().invoke(cli, ["info"])
    assert result.exit_code == 1
    assert "31337" not in result.output
    assert "error: Redis at redis://default:****@127.0.0.1:1/13 is unreachable" in result.output


def _message_json(**changes: object) -> str:
    data = events.CATALOGUE["message_created"].example()
    data.update(changes)
    return json.dumps(data)  # ensure_ascii: a lone surrogate is written as the escape \ud800


SEND_REFUSALS = {
    "surrogate-in-message": (_message_json(message="hi \ud800"), "message: contains a lone surrogate U+D800"),
    "surrogate-in-attachment-key": (
        _message_json(attachment=[{"na\udc00me": "a.pdf"}]),
        "attachment[0]['na\\udc00me']: object key contains a lone surrogate U+DC00",
    ),
    "nan": (_message_json(attachment=[{"score": float("nan")}]), "attachment[0].score: float nan"),
    "2**53": (_message_json(attachment=[2**53]), "attachment[0]: integer 9007199254740992 is outside"),
    "33-deep": (
        _message_json(attachment=json.loads("[" * 33 + "]" * 33)),
        "nested more than 32 levels deep",
    ),
}


@pytest.mark.parametrize("case", list(SEND_REFUSALS))
def test_send_refuses_what_json_cannot_carry_in_one_line(case: str, make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a"}])
    text, expected = SEND_REFUSALS[case]
    text.encode("ascii")  # the JSON text is plain ASCII: a surrogate is only an escape in it

    result = CliRunner().invoke(cli, ["send", "message_created", "--data", text], catch_exceptions=False)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: invalid data for event 'message_created': ")
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert store.list_deliveries(runtime.engine) == []
    assert redis_client.keys("rq:job:*") == []


def test_send_refuses_a_lone_surrogate_in_dispatched_by_in_one_line(make_runtime) -> None:
    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/a"}])
    result = CliRunner().invoke(
        cli, ["send", "order_changed", "--sample", "--dispatched-by", "svc-\udcff"], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid data for event 'order_changed': metadata.dispatched_by: ")
    assert result.stderr.count("\n") == 1
    assert store.list_deliveries(runtime.engine) == []
