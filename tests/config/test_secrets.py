"""What a configuration error may quote: never a key, a signing secret or a URL's password, and
any other value only cut short."""

from __future__ import annotations

import pytest

from dispatcher.config import parse_settings
from dispatcher.config.checks import SHOWN_CHARS
from dispatcher.errors import ConfigError

ENDPOINT = {"name": "partner-a", "url": "https://partner.example.com/webhooks/baremeds"}
HEADER_RULE = (
    "must be a valid HTTP header value: printable ASCII, no leading or trailing spaces, no line breaks"
)


def refused(raw: dict, env: dict | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, env=env or {})
    assert "\n" not in str(caught.value)
    return caught.value


# --- endpoint keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "sk_live_trailing_newline\n",  # what a YAML block scalar (key: |) gives
        "sk_live_trailing_space ",
        " sk_live_leading_space",
        "sk_live_\x07bell",
        "sk_live_\ttab",
        "sk_live_line\r\nbreak",
        "sk_live_caf\u00e9",
        "   ",
    ],
)
def test_a_key_that_is_not_a_header_value_is_refused_by_name(key: str) -> None:
    error = refused({"endpoints": [ENDPOINT, {**ENDPOINT, "name": "partner-b", "key": key}]})
    assert error.setting == "endpoints[1].key"
    assert str(error) == f"config: endpoints[1].key: {HEADER_RULE}"
    if key.strip():
        assert key.strip() not in str(error)


def test_a_key_with_a_space_inside_is_accepted() -> None:
    """A space inside is a valid header value (RFC 9110) and requests sends it."""
    (endpoint,) = parse_settings({"endpoints": [{**ENDPOINT, "key": "two words"}]}, env={}).endpoints
    assert endpoint.key == "two words"


@pytest.mark.parametrize("key", [12345, ["sk_live_in_a_list"], {"sk_live_in_a_map": 1}])
def test_a_key_of_the_wrong_type_is_not_quoted(key: object) -> None:
    error = refused({"endpoints": [{**ENDPOINT, "key": key}]})
    assert error.setting == "endpoints[0].key"
    assert "12345" not in str(error) and "sk_live" not in str(error)


@pytest.mark.parametrize(
    ("secret", "setting"),
    [(987654321, "endpoints[0].signing_secret"), ([987654321], "endpoints[0].signing_secret[0]")],
)
def test_a_signing_secret_of_the_wrong_type_is_not_quoted(secret: object, setting: str) -> None:
    error = refused({"endpoints": [{**ENDPOINT, "signing_secret": secret}]})
    assert error.setting == setting
    assert "987654321" not in str(error)


# --- URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://user:hunter2@partner.example.com/hook",
        "https://token-hunter2@partner.example.com/hook",
        "http://:hunter2@127.0.0.1:8080/in",
        "https://@partner.example.com/hook",
    ],
)
def test_an_endpoint_url_with_credentials_is_refused(url: str) -> None:
    error = refused(
        {"environment": "staging", "endpoints": [ENDPOINT, {**ENDPOINT, "name": "b", "url": url}]}
    )
    assert str(error) == (
        "config: endpoints[1].url: must not carry credentials (user:password@); put the key in endpoints[1].key"
    )


@pytest.mark.parametrize(
    "url",
    ["https://partner.example.com/hook\n", " https://partner.example.com/hook", "https://p.example.com/a\rb"],
)
def test_an_endpoint_url_with_a_line_break_or_outer_space_is_refused(url: str) -> None:
    assert refused({"endpoints": [{**ENDPOINT, "url": url}]}).setting == "endpoints[0].url"


def test_an_at_sign_in_the_path_is_not_credentials() -> None:
    url = "https://partner.example.com/hooks/ops@example.com"
    (endpoint,) = parse_settings({"endpoints": [{**ENDPOINT, "url": url}]}, env={}).endpoints
    assert endpoint.url == url


def test_an_unparsable_endpoint_url_is_a_config_error() -> None:
    assert refused({"endpoints": [{**ENDPOINT, "url": "https://[::1/hook"}]}).setting == "endpoints[0].url"


@pytest.mark.parametrize(
    ("raw", "env", "setting", "source"),
    [
        ({"redis_url": "http://:hunter2@cache:6379/0"}, {}, "redis_url", ""),
        ({}, {"DISPATCHER_REDIS_URL": "http://:hunter2@cache:6379/0"}, "redis_url", "DISPATCHER_REDIS_URL"),
        ({"database_url": "postgresql:user:hunter2@db/x"}, {}, "database_url", ""),
        ({}, {"DISPATCHER_DATABASE_URL": "user:hunter2@db/x"}, "database_url", "DISPATCHER_DATABASE_URL"),
        (
            {},
            {"DISPATCHER_REDIS_URL": "redis://:hunter2@cache:6379/0\n"},
            "redis_url",
            "DISPATCHER_REDIS_URL",
        ),
        ({"database_url": "postgresql://u:hunter2@db/x\n"}, {}, "database_url", ""),
    ],
)
def test_a_bad_service_url_is_refused_without_its_password(
    raw: dict, env: dict, setting: str, source: str
) -> None:
    error = refused(raw, env)
    assert error.setting == setting
    assert "hunter2" not in str(error)
    if source:
        assert f"(set by {source})" in str(error)


def test_service_urls_with_passwords_are_accepted() -> None:
    settings = parse_settings(
        {"redis_url": "redis://:pw@cache:6379/0"},
        env={"DISPATCHER_DATABASE_URL": "postgresql://u:pw@db/hooks"},
    )
    assert (settings.redis_url, settings.database_url) == (
        "redis://:pw@cache:6379/0",
        "postgresql://u:pw@db/hooks",
    )


# --- every quoted value is bounded -------------------------------------------------------------


def assert_bounded(error: ConfigError) -> None:
    assert len(error.problem) < SHOWN_CHARS + 120, error.problem


@pytest.mark.parametrize(
    ("raw", "setting"),
    [
        ({"source": ["x" * 1_000_000]}, "source"),
        ({"endpoints": [{**ENDPOINT, "events": ["y" * 1_000_000]}]}, "endpoints[0].events[0]"),
        ({"endpoints": [{**ENDPOINT, "events": [["z"] * 1_000_000]}]}, "endpoints[0].events[0]"),
        ({"endpoints": [{**ENDPOINT, "url": "ftp://" + "h" * 1_000_000}]}, "endpoints[0].url"),
        ({"delivery": {"backoff": "b" * 1_000_000}}, "delivery.backoff"),
        ({"allow_networks": ["n" * 1_000_000]}, "allow_networks[0]"),
        ({"worker": {"threads": 10**4000}}, "worker.threads"),
        ({"delivery": {"timeout": 10**400}}, "delivery.timeout"),
        ({"delivery": {"backoff": {"base": 10**400}}}, "delivery.backoff.base"),
        ({"endpoints": [{**ENDPOINT, "max_concurrency": 10**5000}]}, "endpoints[0].max_concurrency"),
    ],
)
def test_a_large_value_is_quoted_cut_short(raw: dict, setting: str) -> None:
    error = refused(raw)
    assert error.setting == setting
    assert_bounded(error)


def test_a_value_that_contains_itself_is_quoted_cut_short() -> None:
    events: list = []
    events.append(events)
    error = refused({"endpoints": [{**ENDPOINT, "events": events}]})
    assert_bounded(error)


def test_an_unknown_setting_with_a_huge_name_is_cut_short() -> None:
    error = refused({"k" * 1_000_000: 1})
    assert len(str(error)) < 400


def test_a_retention_longer_than_a_date_can_reach_is_refused() -> None:
    """A retention of 10**10 days made every process log line fail (a date before year 1)."""
    error = refused({"process_log_retention_days": 10**10})
    assert error.setting == "process_log_retention_days"
    assert parse_settings({"process_log_retention_days": 36500}, env={}).process_log_retention_days == 36500
