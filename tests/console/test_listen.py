"""Who may start the console (``dispatcher/console/listen.py``): no user, no console; in
production it listens beyond loopback only behind TLS or a trusted proxy; ``dispatcher console``
refuses to start without a user."""

from __future__ import annotations

from click.testing import CliRunner

from dispatcher.cli import cli
from dispatcher.config import parse_settings
from dispatcher.console.listen import start_problem

from .conftest import console_section


def settings(**raw):
    return parse_settings(raw, env={})


def test_no_user_no_console():
    problem = start_problem(settings(), "127.0.0.1")
    assert "dispatcher console hash-password" in problem and "console.users" in problem


def test_production_listens_beyond_loopback_only_behind_tls_or_a_proxy():
    users = console_section()
    assert start_problem(settings(environment="production", console=users), "127.0.0.1") is None
    assert "127.0.0.1" in start_problem(settings(environment="production", console=users), "0.0.0.0")
    https = {**users, "https": True}
    assert start_problem(settings(environment="production", console=https), "0.0.0.0") is None
    proxy = {**users, "trusted_proxy": {"from": ["10.0.0.0/8"]}}
    assert start_problem(settings(environment="production", console=proxy), "0.0.0.0") is None
    assert start_problem(settings(environment="staging", console=users), "0.0.0.0") is None


def test_the_console_refuses_to_start_without_a_user(write_config, monkeypatch):
    monkeypatch.setenv("DISPATCHER_CONFIG", str(write_config()))
    from dispatcher.runtime import set_runtime

    previous = set_runtime(None)
    try:
        result = CliRunner().invoke(cli, ["console", "--port", "8499"])
    finally:
        set_runtime(previous)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the console has no users") and result.stderr.count("\n") == 1
