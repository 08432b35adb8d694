"""The ``console:`` section of the file (``dispatcher/config/console.py``): every bad console
setting is one line naming it, a secret never quoted; host names and the public URL are checked
and normalized."""

from __future__ import annotations

import pytest

from dispatcher.config import parse_settings
from dispatcher.config.console_settings import ConsoleSettings, TrustedProxy
from dispatcher.errors import ConfigError


def settings(**raw):
    return parse_settings(raw, env={})


@pytest.mark.parametrize(
    ("console", "message"),
    [
        (
            {"users": [{"name": "a", "password_hash": "hunter2-plain"}]},
            "console.users[0].password_hash: must be an argon2id hash",
        ),
        (
            {"users": [{"name": "a", "password_hash": 12345}]},
            "console.users[0].password_hash: expected a string, got int",
        ),
        ({"session_secret": "short-secret-xyz"}, "console.session_secret: must be at least 32"),
        (
            {
                "users": [
                    {"name": "a", "password_hash": "$argon2id$v=19$m=1,t=1,p=1$aaaa$bbbb", "role": "root"}
                ]
            },
            "console.users[0].role: must be one of viewer, operator",
        ),
        ({"session_hours": 0}, "console.session_hours: must be at least 1 hour"),
        ({"trusted_proxy": {"from": ["not-a-network"]}}, "console.trusted_proxy.from[0]"),
        ({"trusted_proxy": {"header": "X-User"}}, "console.trusted_proxy.from: is required"),
        ({"proxy_roles": {"ann": "boss"}}, "console.proxy_roles.ann: must be one of"),
        ({"colour": "blue"}, "console.colour: unknown setting"),
    ],
)
def test_a_bad_console_setting_is_one_line_naming_it(console, message):
    with pytest.raises(ConfigError) as caught:
        settings(console=console)
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert "hunter2" not in text and "short-secret" not in text


@pytest.mark.parametrize(
    ("console", "message"),
    [
        ({"allowed_hosts": ["console.example.org:443"]}, "console.allowed_hosts[0]: must be a host name"),
        ({"allowed_hosts": ["https://console.example.org"]}, "console.allowed_hosts[0]: must be a host name"),
        ({"allowed_hosts": []}, "console.allowed_hosts: list the console's host names"),
        ({"allowed_hosts": "localhost"}, "console.allowed_hosts: "),
        ({"public_url": "console.example.org"}, "console.public_url: must be the console's absolute address"),
        ({"public_url": "https://console.example.org/console"}, "console.public_url: must be"),
        ({"public_url": "https://console.example.org/?a=1"}, "console.public_url: must be"),
        ({"public_url": "ftp://console.example.org"}, "console.public_url: must be"),
    ],
)
def test_a_bad_host_setting_is_one_line_naming_it(console, message):
    with pytest.raises(ConfigError) as caught:
        parse_settings({"console": console}, env={})
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_host_settings_are_normalized():
    console = parse_settings(
        {
            "console": {
                "allowed_hosts": ["Console.Example.org.", "[::1]"],
                "public_url": "https://B.example:8443/",
            }
        },
        env={},
    ).console
    assert console.allowed_hosts == ("console.example.org", "::1")
    assert console.public_url == "https://b.example:8443"
    assert console.hosts("0.0.0.0") == {"console.example.org", "::1", "b.example"}


def test_a_second_user_of_one_name_is_refused_naming_it():
    user = {"name": "ann", "password_hash": "$argon2id$v=19$m=1,t=1,p=1$aaaa$bbbb"}
    with pytest.raises(ConfigError) as caught:
        settings(console={"users": [user, {**user, "role": "operator"}]})
    assert str(caught.value) == "config: console.users[1].name: duplicate user name 'ann'"
    assert "$argon2id$" not in str(caught.value)


def test_the_section_becomes_the_consoles_settings():
    console = settings(
        console={
            "users": [{"name": "ann", "password_hash": "$argon2id$v=19$m=1,t=1,p=1$aaaa$bbbb"}],
            "session_hours": 2,
            "https": True,
            "trusted_proxy": {"from": ["10.0.0.0/8"]},
            "proxy_roles": {"zed": "viewer", "*": "operator"},
            "allowed_hosts": ["a.example", "A.example."],
        }
    ).console
    (ann,) = console.users
    assert (ann.name, ann.role, ann.password_hash.reveal()) == (
        "ann",
        "viewer",
        "$argon2id$v=19$m=1,t=1,p=1$aaaa$bbbb",
    )
    assert (console.session_hours, console.https, console.session_secret) == (2, True, None)
    assert console.trusted_proxy == TrustedProxy("X-Forwarded-User", ("10.0.0.0/8",))
    assert console.proxy_roles == (("*", "operator"), ("zed", "viewer"))
    assert console.allowed_hosts == ("a.example",)  # the same host once
    assert settings().console == ConsoleSettings()
