"""Who may start the console and how it is configured: no user, production's listening rule,
the console section's errors (a secret never quoted), ``config check``, ``hash-password``, the
login throttle's clock and the access log."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from click.testing import CliRunner

from dispatcher.cli import cli
from dispatcher.config import parse_settings
from dispatcher.console.auth import password_matches
from dispatcher.console.listen import start_problem
from dispatcher.console.throttle import admit
from dispatcher.console.web import ACCESS_LOGGER
from dispatcher.errors import ConfigError

from .conftest import SECRET_PATIENT, console_section, csrf_of, password_hashes, seed


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


def test_hash_password_reads_the_password_from_stdin_and_prints_an_argon2id_hash():
    result = CliRunner().invoke(cli, ["console", "hash-password"], input="correct horse\n")
    assert result.exit_code == 0
    printed = result.stdout.strip()
    assert printed.startswith("$argon2id$") and "correct horse" not in result.output
    assert password_matches(printed, "correct horse") and not password_matches(printed, "wrong")
    assert not password_matches(None, "correct horse")


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


def test_the_throttle_counts_five_passwords_a_minute_for_a_name_in_a_sliding_window(redis_client):
    for t in (0, 10, 20, 30, 40):
        assert admit(redis_client, "ann", f"10.0.0.{t}", t) == 0
    assert admit(redis_client, "ann", "10.0.1.1", 50) == 10  # until the first leaves the window
    assert admit(redis_client, "bob", "10.0.1.1", 50) == 0  # another name is not held back
    assert admit(redis_client, "ann", "10.0.1.1", 60) == 0  # the first left: one more is counted
    assert admit(redis_client, "ann", "10.0.1.1", 61) == 9


def test_the_throttle_counts_twenty_attempts_a_minute_from_an_address(redis_client):
    for i in range(20):
        assert admit(redis_client, f"name-{i}", "10.9.9.9", 100) == 0
    assert admit(redis_client, "name-20", "10.9.9.9", 100.5) == 60
    assert admit(redis_client, "name-20", "10.9.9.8", 100.5) == 0


def test_the_access_log_has_paths_and_names_but_no_query_and_no_phi(client_for, runtime):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger(ACCESS_LOGGER).addHandler(handler)
    try:
        request_id = seed(runtime)
        client = client_for("olivia")
        page = client.get("/deliveries", params={"status": "failed", "request_id": request_id})
        found = client.post(
            "/deliveries/patient", data={"patient_id": SECRET_PATIENT, "csrf": csrf_of(page.text)}
        )
        revealed = client.post(f"/deliveries/{request_id}/reveal", data={"csrf": csrf_of(page.text)})
        assert SECRET_PATIENT in revealed.text and found.status_code == 200
    finally:
        logging.getLogger(ACCESS_LOGGER).removeHandler(handler)
    log = stream.getvalue()
    assert re.search(r"GET /deliveries 200 \d+ms user=olivia", log)
    assert f"POST /deliveries/{request_id}/reveal 200" in log
    assert SECRET_PATIENT not in log and "?" not in log and "status=failed" not in log
    process_log = runtime.settings.process_log
    import pathlib

    text = pathlib.Path(process_log).read_text() if pathlib.Path(process_log).exists() else ""
    assert SECRET_PATIENT not in text


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
