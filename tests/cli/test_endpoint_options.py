"""The setting options of ``dispatcher endpoints add|edit`` (:mod:`dispatcher.cli.endpoint_options`):
each read as the file would hold it, by its file name; ``--set`` takes any setting or dotted
path as YAML, ``${NAME}`` in it read from the environment wherever it stands; keys and secrets
from a variable or stdin taken as they are; a mistake a ``ConfigError`` naming the setting."""

from __future__ import annotations

import io

import click
import pytest

from dispatcher.cli.endpoint_options import key_given, settings_given
from dispatcher.errors import ConfigError


def test_each_option_is_read_as_the_file_would_hold_it() -> None:
    given = {
        "url": "http://h/b",
        "events": " order_changed , message_created ",
        "ordering_fields": "order_number,patient_id",
        "ordered": False,
        "include_key_in_body": None,
        "max_attempts": "3",
        "timeout": "2.5",
        "backoff": "{base: 5, cap: 60}",
        "rate_per_second": "0.5",
        "proxy": "none",
    }
    assert settings_given(given) == {
        "url": "http://h/b",
        "ordered": False,
        "events": ["order_changed", "message_created"],
        "ordering_fields": ["order_number", "patient_id"],
        "max_attempts": 3,
        "timeout": 2.5,
        "backoff": {"base": 5, "cap": 60},
        "rate_per_second": 0.5,
        "proxy": "none",
    }
    assert settings_given({"events": "*"}) == {"events": ["*"]}


def test_set_reads_yaml_and_the_environment_wherever_a_reference_stands(monkeypatch) -> None:
    monkeypatch.setenv("TOKEN", "t0k:{with} $pecial, chars")
    monkeypatch.setenv("HOST", "h.example")
    given = {
        "assignments": (
            "auth={bearer: ${TOKEN}}",
            "url=https://${HOST}/hook",
            "disable_after.window=1d",
            "headers={X-Literal: $${NOT_READ}}",
        )
    }
    assert settings_given(given) == {
        "auth": {"bearer": "t0k:{with} $pecial, chars"},
        "url": "https://h.example/hook",
        "disable_after.window": "1d",
        "headers": {"X-Literal": "${NOT_READ}"},
    }


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ({"assignments": ("auth",)}, "config: --set: expected KEY=YAML"),
        ({"assignments": ("=1",)}, "config: --set: expected KEY=YAML"),
        ({"assignments": ("backoff=[1,",)}, "config: backoff: not valid YAML"),
        ({"assignments": ("auth={bearer: ${UNSET_HERE}}",)}, "config: auth.bearer: environment variable UNSET_HERE is not set"),
        ({"signing_secret_env": "UNSET_HERE"}, "config: signing_secret: environment variable UNSET_HERE is not set"),
    ],
)  # fmt: skip
def test_a_mistake_names_the_setting(given, error) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_given(given)
    assert str(raised.value).startswith(error)


def test_keys_and_secrets_are_taken_as_they_are(monkeypatch) -> None:
    monkeypatch.setenv("KEY", "k$${x}-1")
    monkeypatch.setenv("SECRET", "whsec_abc")
    assert settings_given({"key_env": "KEY", "signing_secret_env": "SECRET"}) == {
        "key": "k$${x}-1",
        "signing_secret": "whsec_abc",
    }
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin-key\r\nsecond line\n"))
    assert key_given(None, True) == "from-stdin-key"
    assert key_given(None, False) is None
    with pytest.raises(click.UsageError, match="not both"):
        key_given("KEY", True)
