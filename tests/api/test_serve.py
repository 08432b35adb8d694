"""Where ``dispatcher api`` may listen, and the real command serving on two uvicorn workers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from dispatcher.api.serve import CannotServe, serve, start_problem
from dispatcher.runtime import Runtime
from tests.conftest import ROOT, wait_for
from tests.console.browser import free_port


@pytest.mark.parametrize(
    ("environment", "https", "host", "refused"),
    [
        ("production", False, "127.0.0.1", False),
        ("production", False, "localhost", False),
        ("production", False, "::1", False),
        ("production", False, "0.0.0.0", True),
        ("production", True, "0.0.0.0", False),
        ("staging", False, "0.0.0.0", False),
    ],
)
def test_production_listens_beyond_loopback_only_behind_tls(
    make_runtime: Callable[..., Runtime], environment: str, https: bool, host: str, refused: bool
) -> None:
    runtime = make_runtime(environment=environment, api={"https": https}, delivery={"tls_verify": True})
    problem = start_problem(runtime.settings, host)
    assert (problem is not None) == refused
    if refused:
        assert problem is not None and "api.https" in problem and host in problem
        with pytest.raises(CannotServe, match="api.https"):
            serve(host, free_port())


def test_the_command_serves_on_two_workers(write_config: Callable[..., Path], tmp_path: Path) -> None:
    config = write_config()
    port = free_port()
    env = {**os.environ, "DISPATCHER_CONFIG": str(config)}
    env.pop("DISPATCHER_REDIS_URL", None)
    env.pop("DISPATCHER_DATABASE_URL", None)
    script = Path(sys.executable).parent / "dispatcher"
    process = subprocess.Popen(
        [str(script), "api", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _answers(port), timeout=30, message="dispatcher api to answer")
        health = requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert "server" not in health.headers
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode(errors="replace")
    assert f"api on http://127.0.0.1:{port}/v1/ with 2 worker(s)" in output
    assert "Traceback" not in output


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code in (200, 503)
    except requests.RequestException:
        return False
