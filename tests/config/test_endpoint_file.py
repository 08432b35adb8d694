"""One endpoint's file model (``dispatcher/config/endpoint_file.py``): its forms and its value,
validated alone as the database's endpoints are."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dispatcher.config import DeliverySettings, DisableAfter, ExponentialBackoff, ListBackoff
from dispatcher.config.endpoint_file import EndpointFile, backoff_value

ENDPOINT = {"name": "partner-a", "url": "https://partner.example.com/webhooks/baremeds"}


def test_the_disable_after_window_defaults_to_five_days() -> None:
    endpoint = EndpointFile.model_validate({**ENDPOINT, "disable_after": {"failed_deliveries": 3}})
    assert endpoint.to_endpoint(DeliverySettings()).disable_after == DisableAfter(3, 5 * 86400)


def test_an_override_is_the_global_delivery_with_it_and_none_without() -> None:
    base = DeliverySettings(timeout=7.0)
    plain = EndpointFile.model_validate(ENDPOINT).to_endpoint(base)
    assert plain.delivery is None
    tuned = EndpointFile.model_validate({**ENDPOINT, "max_attempts": 3, "backoff": [5, 10]}).to_endpoint(base)
    assert tuned.delivery == DeliverySettings(timeout=7.0, max_attempts=3, backoff=ListBackoff((5, 10)))


def test_every_backoff_form_has_its_value() -> None:
    assert backoff_value("exponential") == ExponentialBackoff()
    assert backoff_value([1, 2]) == ListBackoff((1, 2))


def test_a_signing_secret_is_one_or_a_list_and_nothing_else() -> None:
    with pytest.raises(ValidationError, match="a string or a list"):
        EndpointFile.model_validate({**ENDPOINT, "signing_secret": 5})
