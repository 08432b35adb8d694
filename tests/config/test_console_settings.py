"""The console's settings as values (``dispatcher/config/console_settings.py``): host names as
the console compares them, a secret that shows as ``****`` wherever it is printed or copied,
the user and proxy role of a name, the host names a request may name, and what the process log
masks."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
from click.testing import CliRunner

from dispatcher.cli import cli
from dispatcher.config.console_settings import (
    MASK,
    Concealed,
    ConsoleSettings,
    ConsoleUser,
    host_name,
)
from tests.console.conftest import console_section, password_hashes

HASH = "$argon2id$v=19$m=1,t=1,p=1$salt$hash"


def test_config_check_masks_the_password_hashes_and_the_session_secret(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"environment": "test", "console": console_section()}))
    monkeypatch.setenv("DISPATCHER_CONFIG", str(path))
    result = CliRunner().invoke(cli, ["config", "check"])
    document = json.loads(result.stdout)
    assert document["console"]["users"][0] == {"name": "olivia", "password_hash": "****", "role": "operator"}
    assert document["console"]["session_secret"] == "****"
    for secret in password_hashes().values():
        assert secret not in result.output


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Console.Example.org", "console.example.org"),
        (" console.example.org. ", "console.example.org"),
        ("[::1]", "::1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
        ("10.0.0.5.", "10.0.0.5"),
        ("10.0.0.5", "10.0.0.5"),
        ("under_score.internal", "under_score.internal"),
        ("example.org:443", None),
        ("https://example.org", None),
        ("[not-an-address]", None),
        ("-leading-hyphen.example", None),
        ("exämple.org", None),
        ("", None),
    ],
)
def test_a_host_name_is_lower_case_without_brackets_or_final_dot_else_none(text, name):
    assert host_name(text) == name


def test_a_concealed_secret_shows_as_the_mask_and_reveals_its_text():
    secret = Concealed("the-session-secret-of-enough-length")
    assert repr(secret) == str(secret) == f"{secret}" == MASK
    assert copy.deepcopy(secret) == MASK
    assert secret.reveal() == "the-session-secret-of-enough-length"
    assert secret == Concealed("the-session-secret-of-enough-length") != Concealed("another")
    assert secret != "the-session-secret-of-enough-length"
    assert len({secret, Concealed("the-session-secret-of-enough-length")}) == 1
    user = ConsoleUser("ann", Concealed(HASH), "operator")
    assert dataclasses.asdict(user) == {"name": "ann", "password_hash": MASK, "role": "operator"}
    assert HASH not in repr(ConsoleSettings(users=(user,), session_secret=secret))


def test_a_user_is_found_by_name_and_a_proxy_name_gets_its_role_or_the_star_role():
    ann = ConsoleUser("ann", Concealed(HASH))
    console = ConsoleSettings(users=(ann,), proxy_roles=(("opal", "operator"),))
    assert console.user("ann") is ann and ann.role == "viewer"
    assert console.user("bob") is None
    assert console.proxy_role("opal") == "operator"
    assert console.proxy_role("stranger") is None  # no entry: such a name is refused
    anyone = dataclasses.replace(console, proxy_roles=(("opal", "operator"), ("*", "viewer")))
    assert (anyone.proxy_role("opal"), anyone.proxy_role("stranger")) == ("operator", "viewer")


def test_the_hosts_are_the_listed_ones_or_the_listen_address_and_loopback():
    assert ConsoleSettings().hosts() == {"localhost", "127.0.0.1", "::1"}
    assert ConsoleSettings().hosts("[::2]") == {"localhost", "127.0.0.1", "::1", "::2"}
    listed = ConsoleSettings(allowed_hosts=("console.example.org",))
    assert listed.hosts("10.0.0.5") == {"console.example.org"}  # the listen address is not added
    public = ConsoleSettings(public_url="https://public.example.org:8443")
    assert public.hosts() == {"localhost", "127.0.0.1", "::1", "public.example.org"}


def test_the_secrets_are_the_password_hashes_and_the_session_secret():
    users = (ConsoleUser("ann", Concealed(HASH)), ConsoleUser("bob", Concealed(HASH + "2")))
    assert ConsoleSettings(users=users).secrets() == [HASH, HASH + "2"]
    with_secret = ConsoleSettings(users=users[:1], session_secret=Concealed("s" * 32))
    assert with_secret.secrets() == [HASH, "s" * 32]
    assert ConsoleSettings().secrets() == []
