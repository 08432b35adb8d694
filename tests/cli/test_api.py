"""``dispatcher api`` and ``dispatcher api tokens create|list|revoke`` in-process (click's runner)
and as a real subprocess, against the real Redis and each database: a token is printed once,
alone on stdout, and never again (not in the list, its JSON or the audit); revoking is at once;
every mistake is one line."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from dispatcher import store
from dispatcher.cli import cli
from dispatcher.ops import api_tokens
from tests.cli.helpers import invoke, run_cli

TOKEN = re.compile(r"dsp_[A-Za-z0-9_-]{43}")


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(database_url=database_url)


def fails(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def cells(line: str) -> list[str]:
    """A table row's cells."""
    return [cell.strip() for cell in line.replace("┃", "│").strip().strip("│").split("│")]


def created(name: str, scopes: str) -> str:
    result = invoke("api", "tokens", "create", name, "--scopes", scopes)
    assert result.exit_code == 0
    return result.stdout.strip()


def test_create_prints_the_token_once_alone_on_stdout_and_says_so_on_stderr(runtime) -> None:
    result = invoke("api", "tokens", "create", "ehr-bridge", "--scopes", "read,send")
    assert result.exit_code == 0
    assert TOKEN.fullmatch(result.stdout.strip()) and result.stdout.count("\n") == 1
    token = result.stdout.strip()
    assert token not in result.stderr
    assert "API token ehr-bridge created with scopes send,read" in result.stderr
    assert "shown once" in result.stderr
    assert api_tokens.active_tokens(runtime)[api_tokens.token_hash(token)].name == "ehr-bridge"
    with runtime.engine.connect() as conn:
        rows = (
            conn.execute(sa.select(store.AUDIT)).all()
            + conn.execute(sa.select(store.schema.API_TOKENS)).all()
        )
    assert token not in str(rows)  # neither the audit nor the tokens table holds it


def test_list_shows_names_scopes_and_times_never_a_token(runtime) -> None:
    assert invoke("api", "tokens", "list").stdout.startswith("no API tokens")
    assert json.loads(invoke("api", "tokens", "list", "--json").stdout) == []
    first = created("zeta", "read")
    second = created("alpha", "send,read,operate,read:payload")
    api_tokens.touch(runtime, ["zeta"])
    table = invoke("api", "tokens", "list").stdout
    assert first not in table and second not in table and "dsp_" not in table
    rows = [cells(line) for line in table.splitlines() if "│" in line or "┃" in line]
    assert rows[0] == ["name", "scopes", "created (UTC)", "last used (UTC)"]
    (alpha, alpha_scopes, alpha_made, alpha_used), (zeta, _, _, zeta_used) = rows[1:]
    assert (alpha, alpha_scopes, alpha_used, zeta) == ("alpha", "send,read,operate,read:payload", "-", "zeta")
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", when) for when in (alpha_made, zeta_used))
    document = json.loads(invoke("api", "tokens", "list", "--json").stdout)
    assert [(t["name"], t["scopes"], t["last_used_at"]) for t in document][0] == (
        "alpha",
        ["send", "read", "operate", "read:payload"],
        None,
    )
    assert "dsp_" not in json.dumps(document)


def test_revoke_is_at_once_and_the_name_is_free_again(runtime) -> None:
    token = created("ehr-bridge", "send")
    result = invoke("api", "tokens", "revoke", "ehr-bridge")
    assert result.exit_code == 0
    assert result.stdout == "API token ehr-bridge revoked: requests carrying it are refused from now on\n"
    assert api_tokens.token_hash(token) not in api_tokens.active_tokens(runtime)
    assert created("ehr-bridge", "read") != token


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("create", "ci", "--scopes", "send,admin"),
            "error: unknown scope 'admin'; the scopes are send, read, operate, read:payload\n",
        ),
        (("create", "bad name", "--scopes", "send"), "error: API token name 'bad name': use 1 to 64"),
        (
            ("revoke", "nobody"),
            "error: no API token named 'nobody'; dispatcher api tokens list shows them\n",
        ),
    ],
)
def test_a_mistake_is_one_line_and_exit_1(runtime, args: tuple[str, ...], message: str) -> None:
    code, stdout, stderr = fails("api", "tokens", *args)
    assert code == 1 and stdout == "" and stderr.startswith(message) and stderr.count("\n") == 1
    assert api_tokens.token_list(runtime) == []


def test_a_name_in_use_is_refused_and_the_first_token_kept(runtime) -> None:
    token = created("ci", "send")
    code, stdout, stderr = fails("api", "tokens", "create", "ci", "--scopes", "read")
    assert code == 1 and stdout == ""
    assert stderr == (
        "error: an API token named 'ci' exists already: revoke it first or choose another name\n"
    )
    assert list(api_tokens.active_tokens(runtime)) == [api_tokens.token_hash(token)]


def test_scopes_are_required_and_the_server_options_bounded() -> None:
    code, _, stderr = fails("api", "tokens", "create", "ci")
    assert code == 2 and "Missing option '--scopes'" in stderr
    code, _, stderr = fails("api", "--workers", "0")
    assert code == 2 and "--workers" in stderr
    code, _, stderr = fails("api", "--workers", "65")
    assert code == 2 and "--workers" in stderr
    help_text = invoke("api", "--help").stdout
    assert all(option in help_text for option in ("--host", "--port", "--workers", "tokens"))
    assert "127.0.0.1" in help_text and "8481" in help_text


def test_a_script_captures_the_token_from_a_real_process(write_config, make_runtime) -> None:
    config = write_config()
    made = run_cli(config, "api", "tokens", "create", "deploy", "--scopes", "send")
    assert TOKEN.fullmatch(made.stdout.rstrip("\n")) and made.stdout.count("\n") == 1
    listed = run_cli(config, "api", "tokens", "list", "--json")
    assert [t["name"] for t in json.loads(listed.stdout)] == ["deploy"]
    assert made.stdout.strip() not in listed.stdout + listed.stderr
    revoked = run_cli(config, "api", "tokens", "revoke", "deploy")
    assert "revoked" in revoked.stdout
    runtime = make_runtime()  # the same SQLite file and Redis
    assert api_tokens.token_list(runtime) == []
