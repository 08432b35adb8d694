"""The command line's value types (dispatcher.cli.params): a bad time or duration is a usage
error naming the option, never a traceback, whatever the command."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dispatcher.cli import cli

ABSURD = ["1000000d", "99999999999999999999d", "99999999999999999999"]


@pytest.mark.parametrize("age", ABSURD)
@pytest.mark.parametrize(
    "command",
    [
        ["log", "list", "--since"],
        ["log", "stats", "--since"],
        ["log", "export", "--since"],
        ["retry", "--failed", "--dry-run", "--since"],
        ["replay", "--endpoint", "partner-a", "--dry-run", "--since"],
        ["prune", "--dry-run", "--older-than"],
    ],
)
def test_an_absurd_age_is_one_line_naming_the_option(make_runtime, command: list[str], age: str) -> None:
    make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/hook", "key": "k-123"}])
    result = CliRunner().invoke(cli, [*command, age])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: Invalid value for '--") and "Traceback" not in result.output
    assert len(last) < 200


@pytest.mark.parametrize("value", ["1m30s", "90", "0.5"])
def test_simulate_reads_durations_like_every_other_option(make_runtime, value: str) -> None:
    make_runtime(endpoints=[])
    result = CliRunner().invoke(
        cli, ["simulate", "--rate", "10/s", "--duration", value, "--seed", "1", "--dry-run"]
    )
    assert result.exit_code == 0, result.output


def test_data_that_is_not_utf8_or_nested_past_reading_is_a_usage_error(make_runtime, tmp_path) -> None:
    make_runtime(endpoints=[])
    raw = tmp_path / "latin1.json"
    raw.write_bytes(b'{"order_number": "caf\xe9"}')
    not_utf8 = CliRunner().invoke(cli, ["send", "order_changed", "--data", f"@{raw}"])
    assert not_utf8.exit_code == 2 and "is not UTF-8 text" in not_utf8.output
    deep = CliRunner().invoke(cli, ["send", "order_changed", "--data", "[" * 5000 + "]" * 5000])
    assert deep.exit_code == 2 and "nested too deeply" in deep.output
    assert "Traceback" not in not_utf8.output + deep.output
