"""The settings' types (``dispatcher/config/fields.py``): every number strict and bounded below
and above, the bounds named in the error and accepted themselves, and a setting that may be
left out but not written as ``null``."""

from __future__ import annotations

import pytest

from dispatcher.config import DisableAfter, parse_settings
from dispatcher.config import fields as f
from dispatcher.errors import ConfigError

from .conftest import ENDPOINT, assert_names, config_error, parse, refused


@pytest.mark.parametrize(
    ("raw", "setting"),
    [
        ({"delivery": {"timeout": 0}}, "delivery.timeout"),
        ({"delivery": {"timeout": -1}}, "delivery.timeout"),
        ({"delivery": {"connect_timeout": 0}}, "delivery.connect_timeout"),
        ({"delivery": {"max_attempts": 0}}, "delivery.max_attempts"),
        ({"process_log_retention_days": 0}, "process_log_retention_days"),
        ({"source": "  "}, "source"),
        ({"queue_name": ""}, "queue_name"),
        ({"redis_url": "http://localhost:6379"}, "redis_url"),
        ({"database_url": "webhooks.db"}, "database_url"),
    ],
)
def test_out_of_range_values_are_rejected(raw: dict, setting: str) -> None:
    assert_names(config_error(raw), setting)


@pytest.mark.parametrize(
    ("raw", "setting"),
    [
        ({"delivery": {"timeout": float("nan")}}, "delivery.timeout"),
        ({"delivery": {"backoff": {"base": float("nan")}}}, "delivery.backoff.base"),
    ],
)
def test_nan_is_not_a_positive_number(raw: dict, setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    assert_names(caught.value, setting)


@pytest.mark.parametrize(
    ("codes", "setting"),
    [
        ([500], "delivery.retry_4xx[0]"),
        ([429, 503], "delivery.retry_4xx[1]"),
        ([408, 399], "delivery.retry_4xx[1]"),
        ([200], "delivery.retry_4xx[0]"),
        ([True], "delivery.retry_4xx[0]"),
    ],
)
def test_retry_4xx_only_takes_4xx_codes(codes: list, setting: str) -> None:
    error = config_error({"delivery": {"retry_4xx": codes}})
    assert_names(error, setting)


def test_retry_4xx_accepts_any_4xx_list() -> None:
    assert parse({"delivery": {"retry_4xx": [400, 499]}}).delivery.retry_4xx == (400, 499)
    assert parse({"delivery": {"retry_4xx": []}}).delivery.retry_4xx == ()


@pytest.mark.parametrize(
    ("raw", "setting", "bound"),
    [
        ({"delivery": {"timeout": 1e300}}, "delivery.timeout", f.MAX_TIMEOUT_SECONDS),
        ({"delivery": {"connect_timeout": 601}}, "delivery.connect_timeout", f.MAX_TIMEOUT_SECONDS),
        ({"delivery": {"max_attempts": 10**9}}, "delivery.max_attempts", f.MAX_ATTEMPTS),
        ({"delivery": {"max_payload_bytes": 2**40}}, "delivery.max_payload_bytes", f.MAX_BODY_BYTES),
        ({"delivery": {"response_body_limit": 2**31}}, "delivery.response_body_limit", f.MAX_BODY_BYTES),
        ({"delivery": {"backoff": [10, 10**12]}}, "delivery.backoff[1]", f.MAX_WAIT_SECONDS),
        ({"delivery": {"backoff": {"cap": 10**9}}}, "delivery.backoff.cap", f.MAX_WAIT_SECONDS),
        ({"delivery": {"backoff": {"multiplier": 1e6}}}, "delivery.backoff.multiplier", f.MAX_MULTIPLIER),
        ({"endpoints": [{**ENDPOINT, "timeout": 10**6}]}, "endpoints[0].timeout", f.MAX_TIMEOUT_SECONDS),
        ({"endpoints": [{**ENDPOINT, "max_attempts": 2**31}]}, "endpoints[0].max_attempts", f.MAX_ATTEMPTS),
        (
            {"endpoints": [{**ENDPOINT, "max_concurrency": 2**31}]},
            "endpoints[0].max_concurrency",
            f.MAX_CONCURRENCY,
        ),
        (
            {"endpoints": [{**ENDPOINT, "rate_per_second": 1e300}]},
            "endpoints[0].rate_per_second",
            f.MAX_RATE_PER_SECOND,
        ),
        (
            {"endpoints": [{**ENDPOINT, "disable_after": {"failed_deliveries": 2**31}}]},
            "endpoints[0].disable_after.failed_deliveries",
            f.MAX_FAILED_DELIVERIES,
        ),
        (
            {"endpoints": [{**ENDPOINT, "disable_after": {"failed_deliveries": 3, "window": "400d"}}]},
            "endpoints[0].disable_after.window",
            f.MAX_WINDOW_SECONDS,
        ),
    ],
)
def test_a_huge_number_is_refused_naming_the_bound(raw: dict, setting: str, bound: int) -> None:
    error = refused(raw)
    assert error.setting == setting
    assert f"at most {bound}" in error.problem


def test_the_bounds_themselves_are_accepted() -> None:
    settings = parse_settings(
        {
            "environment": "staging",
            "delivery": {
                "timeout": f.MAX_TIMEOUT_SECONDS,
                "max_attempts": f.MAX_ATTEMPTS,
                "max_payload_bytes": f.MAX_BODY_BYTES,
                "backoff": {"multiplier": f.MAX_MULTIPLIER, "cap": f.MAX_WAIT_SECONDS},
            },
            "endpoints": [
                {
                    **ENDPOINT,
                    "max_concurrency": f.MAX_CONCURRENCY,
                    "rate_per_second": f.MAX_RATE_PER_SECOND,
                    "disable_after": {"failed_deliveries": f.MAX_FAILED_DELIVERIES, "window": "365d"},
                }
            ],
        },
        env={},
    )
    (endpoint,) = settings.endpoints
    assert settings.delivery.max_attempts == f.MAX_ATTEMPTS
    assert endpoint.disable_after == DisableAfter(f.MAX_FAILED_DELIVERIES, f.MAX_WINDOW_SECONDS)


def test_the_largest_exponential_schedule_stays_a_float() -> None:
    """``multiplier ** (attempt - 1)`` is what the backoff computes: it must not overflow."""
    assert f.MAX_MULTIPLIER ** (f.MAX_ATTEMPTS - 1) < 1e300


@pytest.mark.parametrize(
    ("raw", "setting"),
    [
        ({"endpoints": [{**ENDPOINT, "key": None}]}, "endpoints[0].key"),
        ({"endpoints": [{**ENDPOINT, "timeout": None}]}, "endpoints[0].timeout"),
        ({"endpoints": [{**ENDPOINT, "backoff": None}]}, "endpoints[0].backoff"),
        ({"endpoints": [{**ENDPOINT, "disable_after": None}]}, "endpoints[0].disable_after"),
        ({"endpoints": [{**ENDPOINT, "signing_secret": None}]}, "endpoints[0].signing_secret"),
        ({"delivery": {"ca_bundle": None}}, "delivery.ca_bundle"),
        ({"metrics": None}, "metrics"),
    ],
)
def test_a_setting_written_as_null_is_refused(raw: dict, setting: str) -> None:
    error = refused(raw)
    assert error.setting == setting
    assert "got NoneType" in error.problem
