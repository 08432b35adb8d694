"""``dispatcher console`` and ``console hash-password`` in-process (click's runner): the options
and settings refused before anything listens, each in one line, and an empty password refused.
Serving the console is tested in tests/console/."""

from __future__ import annotations

import pytest

from dispatcher.console.auth import hash_password
from tests.cli.helpers import invoke


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_a_port_out_of_range_is_a_usage_error(port: str) -> None:
    result = invoke("console", "--port", port)
    assert result.exit_code == 2 and result.stdout == ""
    assert "'--port'" in result.stderr and port in result.stderr


def test_help_names_the_options_and_hash_password() -> None:
    result = invoke("console", "--help")
    assert result.exit_code == 0
    assert "--host" in result.stdout and "--port" in result.stdout and "hash-password" in result.stdout


def test_production_refuses_to_listen_beyond_loopback_without_tls_or_a_proxy(make_runtime) -> None:
    users = [{"name": "olivia", "password_hash": hash_password("correct horse"), "role": "operator"}]
    make_runtime(environment="production", console={"users": users, "session_secret": "s" * 32})

    result = invoke("console", "--host", "0.0.0.0", "--port", "8499")

    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        "error: in production the console listens only on 127.0.0.1 unless console.https is true "
        "(a TLS proxy in front) or console.trusted_proxy is set; got --host 0.0.0.0\n"
    )


@pytest.mark.parametrize("typed", ["", "\n", "\r\n"])
def test_hash_password_refuses_an_empty_password(typed: str) -> None:
    result = invoke("console", "hash-password", input=typed)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "error: the password is empty\n"
