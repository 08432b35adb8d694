"""Where ``dispatcher api`` may listen, and the real command serving on two uvicorn workers."""

from __future__ import annotations

import os
import signal
import socket
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


def started(config: Path, port: int, workers: int = 2) -> subprocess.Popen[bytes]:
    """``dispatcher api --workers N`` on ``port``."""
    env = {**os.environ, "DISPATCHER_CONFIG": str(config)}
    env.pop("DISPATCHER_REDIS_URL", None)
    env.pop("DISPATCHER_DATABASE_URL", None)
    script = Path(sys.executable).parent / "dispatcher"
    return subprocess.Popen(
        [str(script), "api", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.parametrize("workers", [1, 2])
def test_the_command_serves(write_config: Callable[..., Path], workers: int) -> None:
    port = free_port()
    process = started(write_config(), port, workers)
    try:
        wait_for(lambda: _answers(port), timeout=30, message="dispatcher api to answer")
        health = requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert "server" not in health.headers
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode(errors="replace")
    assert f"api on http://127.0.0.1:{port}/v1/ with {workers} worker(s)" in output
    assert "Traceback" not in output


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code in (200, 503)
    except requests.RequestException:
        return False


def test_each_worker_listens_on_its_own_socket_and_one_ending_stops_all(
    write_config: Callable[..., Path],
) -> None:
    port = free_port()
    process = started(write_config(), port)
    try:
        wait_for(lambda: _answers(port), timeout=30, message="dispatcher api to answer")
        workers = [pid for pid in children(process.pid) if "resource_tracker" not in _cmdline(pid)]
        assert len(workers) == 2
        wait_for(lambda: len(_listening(port)) == 2, timeout=30, message="both workers listening")
        os.kill(max(workers), signal.SIGKILL)
        assert process.wait(timeout=60) == 1
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate(timeout=30)[0].decode(errors="replace")
    assert "an API worker ended (exit code -9); the others were stopped" in output
    assert not _listening(port)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_port_in_use_is_one_line(write_config: Callable[..., Path], workers: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = started(write_config(), port, workers)
        output = process.communicate(timeout=60)[0].decode(errors="replace")
    assert "api on" not in output
    assert process.returncode == 1
    assert (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use (choose another --port)" in output
    )


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _listening(port: int) -> list[str]:
    """The listening sockets on ``port`` (``ss``), one line each."""
    out = subprocess.run(
        ["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if line.strip()]
