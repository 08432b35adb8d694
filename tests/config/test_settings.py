"""The settings as values (``dispatcher/config/settings.py``): the defaults, an endpoint's
subscriptions, key, ordering key and delivery overrides, the secrets a log masks, and the
settings built directly with keyword arguments."""

from __future__ import annotations

import dataclasses

import pytest

from dispatcher.config import (
    DEFAULT_KEY,
    DeliverySettings,
    Endpoint,
    ExponentialBackoff,
    ListBackoff,
    Settings,
    parse_settings,
)
from dispatcher.config.console_settings import Concealed, ConsoleSettings
from dispatcher.errors import UnknownEndpoint

from .conftest import ENDPOINT, parse


def test_default_key_is_xxx() -> None:
    assert DEFAULT_KEY == "xxx"


def test_endpoint_event_subscription() -> None:
    settings = parse(
        {
            "endpoints": [
                {"name": "all", "url": "https://a.example.com"},
                {"name": "orders", "url": "https://b.example.com", "events": ["order_changed"]},
                {"name": "none", "url": "https://c.example.com", "events": []},
            ]
        }
    )
    everything, orders, nothing = settings.endpoints
    assert everything.subscribes_to("message_created")
    assert orders.subscribes_to("order_changed")
    assert not orders.subscribes_to("message_created")
    assert not nothing.subscribes_to("order_changed")


def test_endpoint_without_key_gets_xxx_and_is_not_a_secret() -> None:
    settings = parse(
        {
            "endpoints": [
                {"name": "keyless", "url": "https://a.example.com"},
                {"name": "keyed", "url": "https://b.example.com", "key": "real-secret-1"},
            ]
        }
    )
    keyless, keyed = settings.endpoints
    assert keyless.key == "xxx"
    assert keyless.key_configured is False
    assert keyed.key == "real-secret-1"
    assert keyed.key_configured is True
    assert settings.secrets() == ["real-secret-1"]


def test_secrets_is_empty_without_configured_keys() -> None:
    settings = parse({"endpoints": [{"name": "a", "url": "https://a.example.com"}]})
    assert settings.secrets() == []
    assert "xxx" not in settings.secrets()


def nominal_waits(backoff: ExponentialBackoff, retries: int) -> list[float]:
    """The documented schedule with jitter 0: min(cap, base * multiplier ** (n - 1)) for n = 1..retries."""
    return [min(backoff.cap, backoff.base * backoff.multiplier ** (n - 1)) for n in range(1, retries + 1)]


def test_default_exponential_retry_window_is_a_few_hours() -> None:
    settings = Settings()
    default = settings.delivery.backoff
    assert isinstance(default, ExponentialBackoff)
    no_jitter = ExponentialBackoff(
        base=default.base, multiplier=default.multiplier, cap=default.cap, jitter=0
    )
    waits = nominal_waits(no_jitter, settings.delivery.max_attempts - 1)
    assert len(waits) == 7
    assert waits == sorted(waits)  # never shorter than the wait before
    assert 3600 <= sum(waits) <= 4 * 3600
    # The jitter only lengthens waits; even at its maximum the window stays under 4 hours.
    assert sum(waits) * (1 + default.jitter) <= 4 * 3600


def test_default_exponential_values_are_the_documented_ones() -> None:
    assert ExponentialBackoff() == ExponentialBackoff(base=30.0, multiplier=2.5, cap=3600.0, jitter=0.1)
    assert ExponentialBackoff().maximum == 3600.0


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


def test_the_values_are_still_built_directly() -> None:
    """Tests and the demo build settings without a file, with keyword arguments."""
    endpoint = Endpoint(name="p", url="http://127.0.0.1:9/in", key="k")
    settings = Settings(environment="demo", endpoints=(endpoint,), delivery=DeliverySettings(timeout=5))
    assert settings.require_endpoint("p") is endpoint
    assert dataclasses.replace(settings, worker_threads=2).worker_threads == 2


def test_an_ordered_endpoints_key_is_the_given_one_else_the_first_field_it_finds() -> None:
    ordered = Endpoint(name="p", url="https://p.example.com", ordered=True)
    data = {"patient_id": "P-1", "encounter_id": "", "order_number": 42}
    assert ordered.ordering_key(data) == "order_number=42"  # encounter_id is empty: passed over
    assert ordered.ordering_key(data, given="enc-7") == "enc-7"
    assert ordered.ordering_key({"patient_id": "P-1", "encounter_id": True}) == "patient_id=P-1"
    assert ordered.ordering_key({"status": "updated"}) is None
    by_patient = dataclasses.replace(ordered, ordering_fields=("patient_id",))
    assert by_patient.ordering_key(data) == "patient_id=P-1"
    unordered = dataclasses.replace(ordered, ordered=False)
    assert unordered.ordering_key(data, given="enc-7") is None


def test_an_unknown_endpoint_name_is_refused_listing_the_configured_ones() -> None:
    settings = Settings(endpoints=(Endpoint(name="lab", url="https://l.example.com"),))
    with pytest.raises(UnknownEndpoint, match=r"^unknown endpoint 'pharmacy'; configured: lab$"):
        settings.require_endpoint("pharmacy")
    with pytest.raises(UnknownEndpoint, match=r"configured: \(none\)$"):
        Settings().require_endpoint("lab")


def test_requests_verify_is_the_ca_bundle_when_verifying_else_the_flag() -> None:
    assert DeliverySettings().verify is True
    assert DeliverySettings(ca_bundle="/etc/ca.pem").verify == "/etc/ca.pem"
    assert DeliverySettings(tls_verify=False, ca_bundle="/etc/ca.pem").verify is False


def test_the_secrets_are_keys_signing_secrets_with_and_without_prefix_storage_keys_and_the_consoles() -> None:
    secret = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    endpoint = Endpoint(name="p", url="https://p.example.com", key="k-1", signing_secrets=(secret,))
    console = ConsoleSettings(session_secret=Concealed("s" * 32))
    settings = Settings(endpoints=(endpoint,), storage_keys=("storage-key",), console=console)
    assert settings.secrets() == ["k-1", secret, secret.removeprefix("whsec_"), "storage-key", "s" * 32]
    assert endpoint.signing_keys() == [b"ABCDEFGHIJKLMNOPQRSTUVWX"]
    public = Endpoint(name="q", url="https://q.example.com", key=DEFAULT_KEY)
    assert public.secrets() == []
