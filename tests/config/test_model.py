"""The typed configuration (``dispatcher/config/model.py``): the file's pydantic models become
frozen values, the disable_after window's default, and the file model frozen too. Their bounds
are ``test_fields.py``, their checks ``test_checks.py``, their errors ``test_problems.py``."""

from __future__ import annotations

import dataclasses

import pytest

from dispatcher.config import (
    DisableAfter,
    ExponentialBackoff,
    MetricsSettings,
    Settings,
    parse_settings,
)
from dispatcher.config.model import ConfigFile

ENDPOINT = {"name": "partner-a", "url": "https://partner.example.com/webhooks/baremeds"}


# --- the values the file becomes -----------------------------------------------------------------


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


def test_the_file_model_is_frozen() -> None:
    file = ConfigFile.model_validate({"source": "Acme"})
    with pytest.raises(ValueError):
        file.source = "Other"  # type: ignore[misc]
    assert file.to_settings() == Settings(source="Acme")
