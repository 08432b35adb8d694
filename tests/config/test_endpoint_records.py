"""An endpoint as the database keeps it (``dispatcher/config/endpoint_records.py``): the file's
mapping written from an endpoint and read back to the same endpoint, checked as the file is
(each mistake naming the setting, production's https rule), retiring secrets signing after."""

from __future__ import annotations

import pytest

from dispatcher.config import parse_settings
from dispatcher.config.endpoint_records import endpoint_definition, endpoint_from_definition
from dispatcher.errors import ConfigError

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
ENDPOINTS = [
    {
        "name": "everything",
        "url": "http://partner.example/hook",
        "key": "key-of-everything",
        "events": ["order_changed", "message_created"],
        "include_key_in_body": True,
        "signing_secret": SECRET,
        "timeout": 3,
        "max_attempts": 2,
        "backoff": [5, 10],
        "breaker": {"min_attempts": 4},
        "max_concurrency": 2,
        "rate_per_second": 1.5,
        "disable_after": {"failed_deliveries": 3, "window": "1d"},
        "ordered": True,
        "ordering_fields": ["patient_id"],
        "headers": {"X-Account": "clinic-17"},
        "auth": {"oauth2": {"token_url": "http://t.example/token", "client_id": "c", "client_secret": "s3"}},
        "proxy": "none",
        "propagate_trace": True,
    },
    {"name": "basic", "url": "http://p.example/", "auth": {"basic": {"username": "u", "password": "pw"}}},
    {"name": "bearer", "url": "http://p.example/", "auth": {"bearer": "tok-123"}, "breaker": False},
    {"name": "plain", "url": "http://p.example/"},
]


def test_every_setting_survives_the_round_trip() -> None:
    settings = parse_settings(
        {"environment": "staging", "delivery": {"timeout": 9}, "endpoints": ENDPOINTS}, env={}
    )
    for endpoint in settings.endpoints:
        definition = endpoint_definition(endpoint, settings.delivery)
        assert endpoint_from_definition(definition, settings) == endpoint
    plain = endpoint_definition(settings.endpoints[-1], settings.delivery)
    assert plain == {"name": "plain", "url": "http://p.example/"}  # defaults are not written


def test_an_override_equal_to_the_global_setting_is_not_written() -> None:
    settings = parse_settings(
        {"delivery": {"timeout": 9}, "endpoints": [{"name": "a", "url": "https://a.example/", "timeout": 9}]},
        env={},
    )
    definition = endpoint_definition(settings.endpoints[0], settings.delivery)
    assert "timeout" not in definition
    assert settings.delivery_for(endpoint_from_definition(definition, settings)).timeout == 9


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"name": "a", "url": "ftp://x"}, "config: url: must be an http:// or https:// URL"),
        (
            {"name": "a", "url": "https://a.example/", "events": ["nope"]},
            "config: events[0]: unknown event 'nope'",
        ),
        (
            {"name": "a", "url": "https://a.example/", "max_attempts": 0},
            "config: max_attempts: must be greater than 0",
        ),
        ({"name": "a", "url": "https://a.example/", "colour": "red"}, "config: colour: unknown setting"),
        ({"url": "https://a.example/"}, "config: name:"),
    ],
)
def test_a_mistake_names_the_setting(definition: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        endpoint_from_definition(definition, parse_settings({}, env={}))
    assert str(caught.value).startswith(message)


def test_production_takes_https_only_for_the_endpoint_and_its_token_url() -> None:
    production = parse_settings({"environment": "production"}, env={})
    with pytest.raises(ConfigError, match=r"^config: url: must be https://"):
        endpoint_from_definition({"name": "a", "url": "http://a.example/"}, production)
    oauth2 = {"oauth2": {"token_url": "http://t.example/", "client_id": "c", "client_secret": "s"}}
    with pytest.raises(ConfigError, match=r"^config: auth.oauth2.token_url: must be https://"):
        endpoint_from_definition({"name": "a", "url": "https://a.example/", "auth": oauth2}, production)


def test_retiring_secrets_sign_after_the_endpoint_s_own_and_once() -> None:
    settings = parse_settings({}, env={})
    definition = {"name": "a", "url": "https://a.example/", "signing_secret": SECRET}
    endpoint = endpoint_from_definition(definition, settings, retiring=[OLD, SECRET])
    assert endpoint.signing_secrets == (SECRET, OLD)
