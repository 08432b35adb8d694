"""Typed errors (dispatcher.errors): each is one line that names what was wrong -- the setting,
the event, the field by its path, the endpoint, the key -- and, where it helps, what to do; each
is a DispatcherError, and a ValueError (or LookupError) where the caller passed something wrong."""

from __future__ import annotations

import pytest

from dispatcher import errors
from dispatcher.contract.catalogue import CATALOGUE
from dispatcher.contract.validation import validate
from tests.conftest import settings_from


def test_a_config_error_names_the_setting() -> None:
    error = errors.ConfigError("delivery.timeout", "must be greater than 0")
    assert str(error) == "config: delivery.timeout: must be greater than 0"
    assert (error.setting, error.problem) == ("delivery.timeout", "must be greater than 0")
    assert isinstance(error, ValueError) and isinstance(error, errors.DispatcherError)


def test_a_bad_setting_read_from_a_file_is_a_config_error_naming_it() -> None:
    with pytest.raises(errors.ConfigError) as caught:
        settings_from({"delivery": {"timeout": -1}})
    assert caught.value.setting == "delivery.timeout" and "delivery.timeout" in str(caught.value)


def test_an_unknown_event_lists_the_known_ones() -> None:
    error = errors.UnknownEvent("order_shipped", ["order_changed", "message_created"])
    assert str(error) == "unknown event 'order_shipped'; expected one of: order_changed, message_created"
    assert error.event == "order_shipped" and isinstance(error, ValueError)


def test_invalid_data_names_every_bad_field_by_its_path() -> None:
    error = errors.InvalidEventData("order_changed", ["order_number: required", "status: expected a string"])
    assert (
        str(error)
        == "invalid data for event 'order_changed': order_number: required; status: expected a string"
    )
    assert error.problems == ["order_number: required", "status: expected a string"]

    data = {**CATALOGUE["prescription_submitted"].example()}
    data["medication"] = [{**data["medication"][0], "quantity": "many"}]
    with pytest.raises(errors.InvalidEventData, match=r"medication\[0\]\.quantity"):
        validate("prescription_submitted", data)
    with pytest.raises(errors.UnknownEvent, match="expected one of: "):
        validate("order_shipped", {})


def test_a_payload_too_large_names_the_setting_and_both_sizes() -> None:
    error = errors.PayloadTooLarge("message_created", 300_001, 262_144)
    assert str(error) == (
        "payload for event 'message_created' is 300001 bytes, more than delivery.max_payload_bytes (262144)"
    )


def test_an_unknown_endpoint_lists_the_configured_ones() -> None:
    assert str(errors.UnknownEndpoint("nope", [])) == "unknown endpoint 'nope'; configured: (none)"
    settings = settings_from(
        {"endpoints": [{"name": "partner-a", "url": "https://a.example.com", "key": "k-a-1"}]}
    )
    with pytest.raises(errors.UnknownEndpoint, match=r"^unknown endpoint 'nope'; configured: partner-a$"):
        settings.require_endpoint("nope")


def test_a_delivery_not_found_names_the_request_id() -> None:
    error = errors.DeliveryNotFound("5e0c5bb4-6a6d-4c7b-9a0c-000000000000")
    assert str(error) == "no delivery with request_id 5e0c5bb4-6a6d-4c7b-9a0c-000000000000"
    assert error.request_id == "5e0c5bb4-6a6d-4c7b-9a0c-000000000000" and isinstance(error, LookupError)


def test_an_idempotency_conflict_names_the_key_shortened_and_says_what_to_do() -> None:
    error = errors.IdempotencyConflict("order-42")
    assert str(error).startswith("idempotency_key 'order-42' was already used for a different dispatch")
    assert str(error).endswith("nothing was dispatched: use a new key for a new event")
    long = errors.IdempotencyConflict("k" * 200)
    assert f"'{'k' * 77}...'" in str(long) and "k" * 78 not in str(long)
    assert long.key == "k" * 200 and isinstance(long, ValueError)


def test_an_invalid_dispatch_argument_names_it() -> None:
    error = errors.InvalidDispatchArgument("ordering_key", "must not be empty")
    assert str(error) == "ordering_key: must not be empty; nothing was dispatched"
    assert error.name == "ordering_key" and isinstance(error, ValueError)


def test_schema_errors_are_one_family() -> None:
    assert issubclass(errors.SchemaOutdated, errors.SchemaMismatch)
    assert issubclass(errors.SchemaUnknown, errors.SchemaMismatch)
    assert not issubclass(errors.SchemaMismatch, ValueError)  # nothing the caller passed


@pytest.mark.parametrize(
    "error",
    [
        errors.ConfigError("a", "b"),
        errors.UnknownEvent("x", ["y"]),
        errors.InvalidEventData("e", ["p"]),
        errors.PayloadTooLarge("e", 2, 1),
        errors.UnknownEndpoint("n", ["m"]),
        errors.DeliveryNotFound("r"),
        errors.IdempotencyConflict("k\nnext line"),
        errors.InvalidDispatchArgument("n", "p"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_message_is_one_line(error: errors.DispatcherError) -> None:
    assert isinstance(error, errors.DispatcherError)
    assert "\n" not in str(error)
