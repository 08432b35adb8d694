"""The root group in-process (click's runner) against the real Redis and SQLite: it lists every
command without importing them, refuses an unknown one, and turns an unreachable service into one
line. Each command's own tests are in test_<its module>.py."""

from __future__ import annotations

from click.testing import CliRunner

from dispatcher.cli import cli
from dispatcher.cli.app import COMMANDS


def test_unreachable_redis_is_one_line_without_its_password(make_runtime):
    make_runtime(redis_url="redis://default:redis-pw-31337@127.0.0.1:1/13")  # nothing listens on port 1
    result = CliRunner().invoke(cli, ["info"])
    assert result.exit_code == 1
    assert "31337" not in result.output
    assert "error: Redis at redis://default:****@127.0.0.1:1/13 is unreachable" in result.output


def test_help_lists_every_command_and_an_unknown_one_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = result.stdout.split("Commands:")[1].split()
    assert set(COMMANDS) <= set(listed)
    unknown = CliRunner().invoke(cli, ["deliver"])
    assert unknown.exit_code == 2 and "No such command 'deliver'" in unknown.stderr
