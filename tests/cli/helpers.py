"""What the CLI tests share: the ``dispatcher`` command in-process (click's runner) and as a real
subprocess (``python -m dispatcher``), and the attempt rows a bulk command leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner, Result

from dispatcher import store
from dispatcher.cli import cli
from tests.conftest import ROOT


def invoke(*args: str, input: str | None = None) -> Result:
    """The command in-process; an unexpected exception fails the test with its traceback."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def run_cli(
    config: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``python -m dispatcher ARGS`` with ``config`` as its only configuration (and ``env`` on
    top), stdin closed: a command that would ask fails instead of waiting."""
    environ = {**os.environ, "DISPATCHER_CONFIG": str(config), **(env or {})}
    environ.pop("DISPATCHER_REDIS_URL", None)
    environ.pop("DISPATCHER_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        cwd=ROOT,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def attempt_counts(runtime) -> dict[str, int]:
    """Attempt rows per request id."""
    a = store.ATTEMPTS
    with runtime.engine.connect() as conn:
        return dict(conn.execute(sa.select(a.c.request_id, sa.func.count()).group_by(a.c.request_id)).all())


def sent_ids(stdout: str) -> list[str]:
    """The request ids ``dispatcher send --json`` printed, in order."""
    return [delivery["request_id"] for delivery in json.loads(stdout)["deliveries"]]
