"""``dispatcher config check`` against the database's endpoints (in-process, the real SQLite and
PostgreSQL): nothing said before the file's endpoints were imported, nor when they match; a
warning per endpoint the file lists that the database lacks or holds otherwise (counted by
``--strict``); a database that does not answer said in one line, the check going on."""

from __future__ import annotations

from dispatcher.ops.door import Actor
from dispatcher.ops.endpoint_admin import Edit, Remove
from tests.cli.helpers import invoke

A = {"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "cfg-key-a-123"}
B = {"name": "partner-b", "url": "http://127.0.0.1:9/b", "key": "cfg-key-b-123"}


def test_config_check_warns_per_endpoint_that_differs_from_the_database(
    make_runtime, write_config, database_url, monkeypatch
) -> None:
    monkeypatch.setenv("DISPATCHER_CONFIG", str(write_config(database_url=database_url, endpoints=[A, B])))
    runtime = make_runtime(database_url=database_url, endpoints=[A, B])
    runtime.engine  # noqa: B018 - the database made, its endpoints not imported yet
    fresh = invoke("config", "check")
    assert fresh.exit_code == 0 and "warning" not in fresh.stderr and "note" not in fresh.stderr

    runtime.adopt_file_endpoints()
    Edit("partner-a", {"key": "cfg-key-a-changed", "max_attempts": 2}).carry_out(runtime, Actor.cli())
    Remove("partner-b").carry_out(runtime, Actor.cli())
    result = invoke("config", "check")

    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: endpoint partner-a differs between the configuration file and the database (key, "
        "max_attempts); the database's is in force; `dispatcher endpoints import --replace` makes the "
        "database match the file",
        "warning: endpoint partner-b is in the configuration file but not in the database, whose endpoints "
        "are in force; `dispatcher endpoints import` adds it",
    ]
    assert "cfg-key-a" not in result.stderr
    assert invoke("config", "check", "--strict").exit_code == 1
    assert invoke("endpoints", "import", "--replace", "--yes").exit_code == 0
    assert "warning" not in invoke("config", "check").stderr


def test_config_check_says_in_one_line_when_the_database_does_not_answer(write_config, monkeypatch) -> None:
    unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    monkeypatch.setenv("DISPATCHER_CONFIG", str(write_config(database_url=unreachable, endpoints=[A])))
    result = invoke("config", "check")
    assert result.exit_code == 0
    [note] = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert note.startswith("note: endpoints not compared with the database: ")
    assert "config ok (1 endpoint" in result.stderr


def test_config_check_makes_no_database(write_config, tmp_path, monkeypatch) -> None:
    missing = tmp_path / "not-yet" / "webhooks.db"
    monkeypatch.setenv(
        "DISPATCHER_CONFIG", str(write_config(database_url=f"sqlite:///{missing}", endpoints=[A]))
    )
    assert invoke("config", "check").exit_code == 0
    assert not missing.exists()
