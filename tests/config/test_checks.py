"""The checks a setting goes through beyond its type (``dispatcher/config/checks.py``): valid
text (no lone surrogate), not blank, a known event, an http(s) endpoint URL, an existing CA
bundle, a backoff's name. Secrets never quoted and values quoted cut short are
``test_secrets.py``."""

from __future__ import annotations

import pytest

from dispatcher.errors import ConfigError

from .conftest import ENDPOINT, assert_names, config_error, parse, refused


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


@pytest.mark.parametrize("events", [["order_shipped"], ["order_changed", "Order_Changed"], ["*", "nope"]])
def test_unknown_event_in_events_is_rejected(events: list[str]) -> None:
    bad_index = len(events) - 1
    error = config_error({"endpoints": [{**ENDPOINT, "events": events}]})
    assert_names(error, f"endpoints[0].events[{bad_index}]")
    assert repr(events[bad_index]) in str(error)
    assert "prescription_submitted" in str(error)  # lists what is allowed


def test_unknown_event_in_second_endpoint_names_that_endpoint() -> None:
    endpoints = [
        ENDPOINT,
        {"name": "b", "url": "https://b.example.com", "events": ["message_created", "typo"]},
    ]
    assert_names(config_error({"endpoints": endpoints}), "endpoints[1].events[1]")


def test_every_catalogue_event_and_star_are_accepted() -> None:
    events = [
        "*",
        "prescription_submitted",
        "prescription_dosage_changed",
        "encounter_cancelled",
        "message_created",
        "order_changed",
        "case_assigned_to_clinician",
    ]
    (endpoint,) = parse({"endpoints": [{**ENDPOINT, "events": events}]}).endpoints
    assert endpoint.events == tuple(events)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://partner.example.com/hook",
        "http://",
        "https:///path-only",
        "partner.example.com/hook",
        "//partner.example.com/hook",
        "file:///etc/passwd",
        "mailto:ops@example.com",
        "",
    ],
)
def test_non_http_urls_are_rejected(url: str) -> None:
    error = config_error({"endpoints": [{**ENDPOINT, "url": url}]})
    assert_names(error, "endpoints[0].url")
    assert "http" in str(error)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/in",
        "https://partner.example.com/webhooks/baremeds?x=1",
        "HTTPS://UPPER.example.com",
    ],
)
def test_http_and_https_urls_are_accepted(url: str) -> None:
    (endpoint,) = parse({"environment": "staging", "endpoints": [{**ENDPOINT, "url": url}]}).endpoints
    assert endpoint.url == url


def test_ca_bundle_must_exist_and_becomes_requests_verify(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"delivery\.ca_bundle: file"):
        parse({"delivery": {"ca_bundle": str(tmp_path / "missing.pem")}})
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert parse({"delivery": {"ca_bundle": str(bundle)}}).delivery.verify == str(bundle)


def test_blank_name_and_empty_key_are_rejected() -> None:
    assert_names(config_error({"endpoints": [{**ENDPOINT, "name": "  "}]}), "endpoints[0].name")
    assert_names(config_error({"endpoints": [{**ENDPOINT, "key": ""}]}), "endpoints[0].key")


def test_backoff_unknown_strategy_name() -> None:
    assert_names(config_error({"delivery": {"backoff": "linear"}}), "delivery.backoff")
