"""``dispatcher db`` in-process (click's runner) on SQLite and PostgreSQL: where the database
stands, going down and back up, and one-line errors for a revision that does not exist."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dispatcher.cli import cli
from dispatcher.store import versioning


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_current_check_downgrade_and_upgrade(make_runtime, database_url: str) -> None:
    runtime = make_runtime(database_url=database_url)
    runtime.engine  # noqa: B018 - made at head on first use
    current = json.loads(invoke("db", "current", "--json").stdout)
    assert current == {
        "revision": versioning.HEAD,
        "state": "current",
        "head": versioning.HEAD,
        "revisions": list(versioning.REVISIONS),
        "description": f"at revision {versioning.HEAD} (current; this version's newest is {versioning.HEAD})",
    }
    assert invoke("db", "check").stdout.strip() == f"at head ({versioning.HEAD})"

    down = invoke("db", "downgrade", "0002", "--yes", "--json")
    assert down.exit_code == 0, down.output
    assert json.loads(down.stdout) == {"undone": list(reversed(versioning.REVISIONS[2:])), "after": "0002"}
    check = invoke("db", "check")
    assert check.exit_code == 1
    assert check.stderr.strip() == (
        "error: the log database is at revision 0002 (behind; this version's newest is "
        f"{versioning.HEAD}); this version needs {versioning.HEAD}: run: dispatcher db upgrade"
    )

    step = json.loads(invoke("db", "upgrade", "--to", "0003", "--json").stdout)
    assert (step["before"], step["after"], step["applied"]) == ("0002", "0003", ["0003"])
    rest = json.loads(invoke("db", "upgrade", "--json").stdout)
    assert (rest["after"], rest["applied"], rest["stamped"]) == (
        versioning.HEAD,
        list(versioning.REVISIONS[3:]),
        None,
    )
    assert invoke("db", "check").exit_code == 0


def test_a_revision_that_does_not_exist_is_a_usage_error(make_runtime) -> None:
    make_runtime()
    for args in (("db", "upgrade", "--to", "0042"), ("db", "downgrade", "banana", "--yes")):
        result = invoke(*args)
        assert result.exit_code == 2
        assert (
            "unknown revision" in result.stderr
            and f"expected one of: {', '.join(versioning.REVISIONS)}" in result.stderr
        )
