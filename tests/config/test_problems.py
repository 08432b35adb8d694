"""A pydantic error as the one-line ConfigError (``dispatcher/config/problems.py``): it names
the setting as the README writes it (``endpoints[0].url``, ``delivery.backoff[2]``, ``(top
level)``) and says what is wrong in the words every ConfigError uses, from a mapping or a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher.config import load_settings
from dispatcher.config.problems import describe, setting_path
from dispatcher.errors import ConfigError

from .conftest import ENDPOINT, assert_names, config_error, refused


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("raw", "setting"),
    [
        ({"sources": "Baremeds"}, "sources"),
        ({"delivery": {"timeouts": 30}}, "delivery.timeouts"),
        ({"delivery": {"backoff": {"base": 10, "factor": 2}}}, "delivery.backoff.factor"),
        ({"endpoints": [{**ENDPOINT, "secret": "k"}]}, "endpoints[0].secret"),
        (
            {"endpoints": [ENDPOINT, {"name": "b", "url": "https://b.example.com", "header": "x"}]},
            "endpoints[1].header",
        ),
    ],
)
def test_unknown_keys_are_rejected(raw: dict, setting: str) -> None:
    error = config_error(raw)
    assert_names(error, setting)
    assert "unknown setting" in str(error)


@pytest.mark.parametrize(
    ("raw", "setting"),
    [
        ({"delivery": {"timeout": "30"}}, "delivery.timeout"),
        ({"delivery": {"timeout": True}}, "delivery.timeout"),
        ({"delivery": {"connect_timeout": "5"}}, "delivery.connect_timeout"),
        ({"delivery": {"max_attempts": True}}, "delivery.max_attempts"),
        ({"delivery": {"max_attempts": "8"}}, "delivery.max_attempts"),
        ({"delivery": {"max_attempts": 8.5}}, "delivery.max_attempts"),
        ({"delivery": {"retry_4xx": 429}}, "delivery.retry_4xx"),
        ({"delivery": {"retry_4xx": ["429"]}}, "delivery.retry_4xx[0]"),
        ({"delivery": {"backoff": 60}}, "delivery.backoff"),
        ({"delivery": ["timeout", 30]}, "delivery"),
        ({"delivery": None}, "delivery"),
        ({"endpoints": [{**ENDPOINT, "include_key_in_body": "yes"}]}, "endpoints[0].include_key_in_body"),
        ({"endpoints": [{**ENDPOINT, "include_key_in_body": 1}]}, "endpoints[0].include_key_in_body"),
        ({"endpoints": [{**ENDPOINT, "key": 1234}]}, "endpoints[0].key"),
        ({"endpoints": [{**ENDPOINT, "events": "order_changed"}]}, "endpoints[0].events"),
        ({"endpoints": [{**ENDPOINT, "events": [1]}]}, "endpoints[0].events[0]"),
        ({"endpoints": [{**ENDPOINT, "name": 7}]}, "endpoints[0].name"),
        ({"endpoints": [{**ENDPOINT, "url": ["https://x.example.com"]}]}, "endpoints[0].url"),
        ({"endpoints": ["https://partner.example.com"]}, "endpoints[0]"),
        ({"endpoints": {"partner-a": ENDPOINT}}, "endpoints"),
        ({"source": 3}, "source"),
        ({"queue_name": None}, "queue_name"),
        ({"process_log_retention_days": True}, "process_log_retention_days"),
    ],
)
def test_wrong_types_are_rejected(raw: dict, setting: str) -> None:
    error = config_error(raw)
    assert_names(error, setting)
    assert "expected" in str(error)


def test_wrong_type_read_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text('delivery:\n  timeout: "30"\n  max_attempts: 8\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert_names(caught.value, "delivery.timeout")


def test_yaml_true_is_not_a_number(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("delivery:\n  max_attempts: true\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert_names(caught.value, "delivery.max_attempts")


def test_yaml_yes_string_is_not_a_boolean(tmp_path: Path) -> None:
    # Quoted: YAML 1.1 would otherwise read a bare `yes` as true.
    path = tmp_path / "config.yaml"
    path.write_text(
        'endpoints:\n  - name: a\n    url: https://a.example.com\n    include_key_in_body: "yes"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert_names(caught.value, "endpoints[0].include_key_in_body")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"delivery": {"timeout": "thirty"}}, "delivery.timeout: expected a number, got str 'thirty'"),
        ({"delivery": {"max_attempts": True}}, "delivery.max_attempts: expected an integer, got True"),
        ({"delivery": {"max_attempts": 8.5}}, "delivery.max_attempts: expected an integer, got float 8.5"),
        ({"delivery": None}, "delivery: expected a mapping, got NoneType None"),
        ({"endpoints": {"a": 1}}, "endpoints: expected a list, got dict {'a': 1}"),
        ({"endpoints": [ENDPOINT, {**ENDPOINT}]}, "endpoints[1].name: duplicate endpoint name 'partner-a'"),
        ({"endpoints": [{"url": "https://a.example.com"}]}, "endpoints[0].name: is required"),
        ({"delivery": {"backoff": [10, 60, 0]}}, "delivery.backoff[2]: must be at least 1 second, got 0"),
        ({"delivery": {"backoff": []}}, "delivery.backoff: the list of seconds is empty"),
        (
            {"delivery": {"backoff": 60}},
            "delivery.backoff: expected 'exponential', a list of seconds or a mapping, got int 60",
        ),
        (
            {"delivery": {"backoff": {"base": 100, "cap": 50}}},
            "delivery.backoff.cap: must be at least delivery.backoff.base (100.0)",
        ),
        (
            {"endpoints": [{**ENDPOINT, "backoff": {"base": 100, "cap": 50}}]},
            "endpoints[0].backoff.cap: must be at least endpoints[0].backoff.base (100.0)",
        ),
        ({"delivery": {"timeout": float("nan")}}, "delivery.timeout: must be a finite number, got nan"),
        (
            {"delivery": {"retry_4xx": [429, 503]}},
            "delivery.retry_4xx[1]: must be a 4xx status code, got 503",
        ),
        ({"worker": {"threads": 65}}, "worker.threads: must be between 1 and 64, got 65"),
        ({"metrics": {"port": 0}}, "metrics.port: must be a port number 1-65535, got 0"),
        (
            {"metrics": {"port": 65535, "port_range": 2}},
            "metrics.port_range: must be at least 1 and end at port 65535 or below, got 2",
        ),
        ({"delivery": {"backoff": {"jitter": 2}}}, "delivery.backoff.jitter: must be between 0 and 1, got 2"),
        (
            {"delivery": {"timeouts": 1}},
            "delivery.timeouts: unknown setting; expected one of: timeout, "
            "connect_timeout, max_attempts, backoff, retry_4xx, max_payload_bytes, response_body_limit, "
            "tls_verify, ca_bundle, proxy, no_proxy, breaker",
        ),
        (
            {1: "x"},
            "1: unknown setting; expected one of: source, environment, redis_url, database_url, "
            "queue_name, process_log, process_log_retention_days, delivery, endpoints, allow_networks, "
            "metrics, worker, retention, idempotency_ttl, storage_keys, search_key, console, alerts, api, telemetry",
        ),
        (["source"], "(top level): expected a mapping, got list ['source']"),
        (
            {"endpoints": [{**ENDPOINT, "signing_secret": {"a": 1}}]},
            "endpoints[0].signing_secret: expected a string or a list, got dict",
        ),
        (
            {"endpoints": [{**ENDPOINT, "disable_after": {"window": "5d"}}]},
            "endpoints[0].disable_after.failed_deliveries: is required",
        ),
        (
            {"endpoints": [{**ENDPOINT, "disable_after": {"failed_deliveries": 3, "window": 1.5}}]},
            "endpoints[0].disable_after.window: expected a string or an integer, got float 1.5",
        ),
    ],
)
def test_the_message_names_the_setting_and_the_problem(raw: object, message: str) -> None:
    assert str(refused(raw)) == f"config: {message}"


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("endpoints", 0, "url"), "endpoints[0].url"),
        (("delivery", "backoff", 2), "delivery.backoff[2]"),
        (("console", "users", 1, "name"), "console.users[1].name"),
        (("source",), "source"),
        ((), "(top level)"),
    ],
)
def test_a_location_is_written_as_the_readme_writes_a_setting(loc: tuple, path: str) -> None:
    assert setting_path(loc) == path


def test_a_secret_of_the_wrong_type_is_described_by_its_type_only() -> None:
    error = {"type": "string_type", "input": 12345, "msg": "Input should be a valid string"}
    assert describe(error) == "expected a string, got int 12345"
    assert describe(error, secret=True) == "expected a string, got int"
    assert describe({"type": "missing", "input": {}, "msg": "Field required"}) == "is required"
    assert (
        describe({"type": "bool_type", "input": "yes", "msg": ""}) == "expected true or false, got str 'yes'"
    )
