"""Helpers shared by the config tests: an endpoint that is valid as it is, parsing a raw
mapping (never the process environment), and the ConfigError a bad one raises, naming its
setting."""

from __future__ import annotations

import pytest

from dispatcher.config import Settings, parse_settings
from dispatcher.errors import ConfigError

ENDPOINT = {"name": "partner-a", "url": "https://partner.example.com/webhooks/baremeds"}


def parse(raw: dict) -> Settings:
    return parse_settings(raw, env={})


def config_error(raw: dict) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    return caught.value


def assert_names(error: ConfigError, setting: str) -> None:
    assert error.setting == setting
    assert str(error).startswith(f"config: {setting}: ")


def refused(raw: object) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, env={})  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
    return caught.value
