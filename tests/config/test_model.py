"""The typed configuration: the file's pydantic models, their bounds, text and nulls, and how each
pydantic error becomes one ConfigError naming the setting."""

from __future__ import annotations

import dataclasses

import pytest

from dispatcher.config import (
    DeliverySettings,
    DisableAfter,
    Endpoint,
    ExponentialBackoff,
    ListBackoff,
    MetricsSettings,
    Settings,
    parse_settings,
)
from dispatcher.config import fields as f
from dispatcher.config.model import ConfigFile
from dispatcher.errors import ConfigError

ENDPOINT = {"name": "partner-a", "url": "https://partner.example.com/webhooks/baremeds"}


def refused(raw: object) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, env={})  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
    return caught.value


# --- exact messages ------------------------------------------------------------------------------


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
            "tls_verify, ca_bundle",
        ),
        (
            {1: "x"},
            "1: unknown setting; expected one of: source, environment, redis_url, database_url, "
            "queue_name, process_log, process_log_retention_days, delivery, endpoints, allow_networks, "
            "metrics, worker, retention, idempotency_ttl, storage_keys, console",
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


# --- upper bounds --------------------------------------------------------------------------------


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


# --- text: lone surrogates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "setting"),
    [
        ({"source": "Bare\ud800meds"}, "source"),
        ({"process_log": "logs/\udcff.log"}, "process_log"),
        ({"endpoints": [{**ENDPOINT, "name": "p\udc80"}]}, "endpoints[0].name"),
        ({"endpoints": [{**ENDPOINT, "url": "https://p.example.com/\ud800"}]}, "endpoints[0].url"),
        ({"endpoints": [{**ENDPOINT, "key": "sk_live_\udcff"}]}, "endpoints[0].key"),
        ({"endpoints": [{**ENDPOINT, "events": ["\ud800"]}]}, "endpoints[0].events[0]"),
        ({"endpoints": [{**ENDPOINT, "signing_secret": ["whsec_\ud800"]}]}, "endpoints[0].signing_secret[0]"),
        ({"allow_networks": ["10.0.0.0/8\ud800"]}, "allow_networks[0]"),
        ({"metrics": {"host": "\ud800"}}, "metrics.host"),
        ({"delivery": {"ca_bundle": "/etc/\ud800.pem"}}, "delivery.ca_bundle"),
        ({"delivery": {"backoff": "exponential\ud800"}}, "delivery.backoff"),
        (
            {"endpoints": [{**ENDPOINT, "disable_after": {"failed_deliveries": 1, "window": "\ud800"}}]},
            "endpoints[0].disable_after.window",
        ),
    ],
)
def test_a_lone_surrogate_is_refused_in_every_string_setting(raw: dict, setting: str) -> None:
    error = refused(raw)
    assert error.setting == setting
    assert "lone surrogate" in error.problem
    str(error).encode("utf-8")  # the message itself can be written anywhere


def test_a_lone_surrogate_from_a_yaml_escape_is_refused(tmp_path) -> None:
    from dispatcher.config import load_settings

    path = tmp_path / "config.yaml"
    path.write_text('environment: staging\nsource: "Bare\\ud800meds"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert caught.value.setting == "source" and "lone surrogate" in caught.value.problem


# --- left out, but not null ----------------------------------------------------------------------


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


# --- the values the file becomes -----------------------------------------------------------------


def test_an_endpoint_gets_the_global_delivery_with_its_overrides() -> None:
    settings = parse_settings(
        {
            "environment": "staging",
            "delivery": {"timeout": 12, "max_attempts": 4, "retry_4xx": [429]},
            "endpoints": [
                {**ENDPOINT, "max_attempts": 9, "backoff": [5, 10]},
                {"name": "plain", "url": "https://b.example.com"},
            ],
        },
        env={},
    )
    overriding, plain = settings.endpoints
    assert overriding.delivery == DeliverySettings(
        timeout=12.0, max_attempts=9, backoff=ListBackoff((5, 10)), retry_4xx=(429,)
    )
    assert plain.delivery is None
    assert settings.delivery_for(plain) is settings.delivery
    assert settings.attempt_budgets() == {"partner-a": 9}


def test_every_form_of_the_file_becomes_frozen_values() -> None:
    settings = parse_settings(
        {
            "environment": "staging",
            "endpoints": [
                {
                    **ENDPOINT,
                    "key": "k-1",
                    "signing_secret": "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY",
                    "disable_after": {"failed_deliveries": 5, "window": "1h 30m"},
                    "backoff": {"base": 5},
                    "rate_per_second": 2,
                }
            ],
            "metrics": {"port": 9200},
            "worker": {"threads": 4},
            "allow_networks": ["127.0.0.0/8"],
        },
        env={},
    )
    (endpoint,) = settings.endpoints
    assert endpoint.signing_secrets == ("whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY",)
    assert endpoint.disable_after == DisableAfter(failed_deliveries=5, window_seconds=5400)
    assert endpoint.delivery is not None and endpoint.delivery.backoff == ExponentialBackoff(base=5.0)
    assert endpoint.rate_per_second == 2.0 and isinstance(endpoint.rate_per_second, float)
    assert settings.metrics == MetricsSettings(port=9200)
    assert (settings.worker_threads, settings.allow_networks) == (4, ("127.0.0.0/8",))
    assert hash(settings) == hash(dataclasses.replace(settings))
    with pytest.raises(dataclasses.FrozenInstanceError):
        endpoint.key = "changed"  # type: ignore[misc]


def test_the_values_are_still_built_directly() -> None:
    """Tests and the demo build settings without a file, with keyword arguments."""
    endpoint = Endpoint(name="p", url="http://127.0.0.1:9/in", key="k")
    settings = Settings(environment="demo", endpoints=(endpoint,), delivery=DeliverySettings(timeout=5))
    assert settings.require_endpoint("p") is endpoint
    assert dataclasses.replace(settings, worker_threads=2).worker_threads == 2


def test_the_disable_after_window_defaults_to_five_days() -> None:
    (endpoint,) = parse_settings(
        {"endpoints": [{**ENDPOINT, "disable_after": {"failed_deliveries": 3}}]}, env={}
    ).endpoints
    assert endpoint.disable_after == DisableAfter(3, 5 * 86400)


def test_the_file_model_is_frozen() -> None:
    file = ConfigFile.model_validate({"source": "Acme"})
    with pytest.raises(ValueError):
        file.source = "Other"  # type: ignore[misc]
    assert file.to_settings() == Settings(source="Acme")
