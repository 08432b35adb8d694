"""The ``api:`` section of the file (``dispatcher/config/api.py``): its defaults, each setting
read into :class:`ApiSettings`, ``rate_limit: off``, every bad value one line naming the setting,
the JSON Schema taking what the file takes, and ``config check``'s document keyed like the file."""

from __future__ import annotations

import jsonschema
import pytest

from dispatcher.config import config_schema
from dispatcher.config.api_settings import ApiSettings, RateLimit
from dispatcher.config.document import settings_document
from tests.config.conftest import assert_names, config_error, parse


def test_the_defaults() -> None:
    api = parse({}).api
    assert api == ApiSettings(https=False, max_body_bytes=10485760, rate_limit=RateLimit(200.0, 400))
    assert parse({"api": {}}).api == api


def test_every_setting_is_read() -> None:
    api = parse(
        {"api": {"https": True, "max_body_bytes": 1024, "rate_limit": {"per_second": 2.5, "burst": 5}}}
    ).api
    assert api == ApiSettings(https=True, max_body_bytes=1024, rate_limit=RateLimit(2.5, 5))
    assert parse({"api": {"rate_limit": {"per_second": 50}}}).api.rate_limit == RateLimit(50.0, 400)


@pytest.mark.parametrize("off", ["off", False])
def test_the_rate_limit_may_be_off(off: object) -> None:
    assert parse({"api": {"rate_limit": off}}).api.rate_limit is None


@pytest.mark.parametrize(
    ("api", "setting", "message"),
    [
        ({"https": "yes"}, "api.https", "expected true or false"),
        ({"max_body_bytes": 1023}, "api.max_body_bytes", "must be at least 1024 bytes, got 1023"),
        ({"max_body_bytes": 1073741825}, "api.max_body_bytes", "must be at most 1073741824 bytes"),
        ({"max_body_bytes": "10MB"}, "api.max_body_bytes", "expected an integer"),
        ({"rate_limit": "on"}, "api.rate_limit", "expected off (false) or a mapping {per_second, burst}"),
        ({"rate_limit": True}, "api.rate_limit", "expected off (false) or a mapping {per_second, burst}"),
        ({"rate_limit": {"per_second": 0}}, "api.rate_limit.per_second", "must be greater than 0, got 0"),
        ({"rate_limit": {"per_second": -1}}, "api.rate_limit.per_second", "must be greater than 0"),
        ({"rate_limit": {"burst": 0}}, "api.rate_limit.burst", "must be at least 1, got 0"),
        ({"rate_limit": {"burst": 2.5}}, "api.rate_limit.burst", "expected an integer"),
        ({"rate_limit": {"per_minute": 5}}, "api.rate_limit.per_minute", "unknown setting"),
        ({"port": 8481}, "api.port", "unknown setting; expected one of: https, max_body_bytes, rate_limit"),
    ],
)
def test_a_bad_api_setting_is_one_line_naming_it(api: dict, setting: str, message: str) -> None:
    error = config_error({"api": api})
    assert_names(error, setting)
    assert message in str(error) and "\n" not in str(error)


@pytest.mark.parametrize(
    "api",
    [
        {},
        {"https": True, "max_body_bytes": 2048},
        {"rate_limit": "off"},
        {"rate_limit": False},
        {"rate_limit": {"per_second": 0.5, "burst": 1}},
    ],
)
def test_the_schema_takes_what_the_file_takes(api: dict) -> None:
    validator = jsonschema.Draft202012Validator(config_schema())
    assert [e.message for e in validator.iter_errors({"api": api})] == []


@pytest.mark.parametrize(
    "api", [{"rate_limit": "on"}, {"rate_limit": {"burst": 0}}, {"max_body_bytes": 10}, {"port": 1}]
)
def test_the_schema_refuses_what_the_file_refuses(api: dict) -> None:
    validator = jsonschema.Draft202012Validator(config_schema())
    assert list(validator.iter_errors({"api": api})) != []


def test_config_check_shows_the_section_as_the_file_writes_it() -> None:
    document = settings_document(parse({"api": {"https": True, "rate_limit": {"per_second": 10}}}))
    assert document["api"] == {
        "https": True,
        "max_body_bytes": 10485760,
        "rate_limit": {"per_second": 10.0, "burst": 400},
    }
    assert settings_document(parse({"api": {"rate_limit": "off"}}))["api"]["rate_limit"] == "off"
