"""Who is signed in (``dispatcher/console/auth.py``): an argon2id hash from ``dispatcher console
hash-password`` and the password check, and the single sign-on proxy's header believed only
from the peer's own address, never from ``X-Forwarded-For``. CSRF tokens and their binding to
a user are ``test_csrf_binding.py``."""

from __future__ import annotations

from click.testing import CliRunner

from dispatcher.cli import cli
from dispatcher.config.console_settings import OPERATOR, VIEWER
from dispatcher.console.auth import PASSWORD, PROXY, Principal, password_matches

from .conftest import console_section


def test_hash_password_reads_the_password_from_stdin_and_prints_an_argon2id_hash():
    result = CliRunner().invoke(cli, ["console", "hash-password"], input="correct horse\n")
    assert result.exit_code == 0
    printed = result.stdout.strip()
    assert printed.startswith("$argon2id$") and "correct horse" not in result.output
    assert password_matches(printed, "correct horse") and not password_matches(printed, "wrong")
    assert not password_matches(None, "correct horse")


def test_the_served_console_reads_the_peer_address_not_x_forwarded_for(write_config, tmp_path):
    import httpx

    from . import browser

    config = write_config(
        console=console_section(trusted_proxy={"from": ["10.0.0.0/8"]}, proxy_roles={"intruder": "operator"})
    )
    with browser.console_process(config, tmp_path / "console.out") as base:
        spoofed = httpx.get(
            f"{base}/deliveries",
            headers={"X-Forwarded-For": "10.9.9.9", "X-Forwarded-User": "intruder"},
            follow_redirects=False,
        )
        assert (spoofed.status_code, spoofed.headers["location"]) == (303, "/login")
        assert "content-security-policy" in spoofed.headers and "server" not in spoofed.headers
    log = (tmp_path / "console.out").read_text()
    assert "GET /deliveries 303" in log and "intruder" not in log


def test_a_stored_hash_that_is_not_argon2_matches_no_password():
    assert not password_matches("plain-text-not-a-hash", "plain-text-not-a-hash")
    assert not password_matches("", "")


def test_only_an_operator_principal_may_act():
    assert Principal("olivia", OPERATOR, PASSWORD).operator
    assert not Principal("victor", VIEWER, PROXY).operator
