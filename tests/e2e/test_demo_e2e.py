"""The README's first command: `dispatcher demo`, with the configured Redis and with none."""

from __future__ import annotations

import os
import subprocess
import sys


def run_demo(tmp_path, redis_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DISPATCHER_REDIS_URL": redis_url, "DISPATCHER_CONFIG": str(tmp_path / "none.yaml")}
    (tmp_path / "none.yaml").write_text("{}\n")
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_with_the_configured_redis(tmp_path, redis_url):
    result = run_demo(tmp_path, redis_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"using the configured Redis at {redis_url}" in result.stdout
    assert "6 of 6 delivered in 7 attempts" in result.stdout
    assert "retry_scheduled" in result.stdout and "stats (dispatcher log stats)" in result.stdout


def test_demo_starts_its_own_redis_when_none_answers(tmp_path):
    result = run_demo(tmp_path, "redis://127.0.0.1:1/0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "started an embedded redis-server" in result.stdout
    assert "6 of 6 delivered in 7 attempts" in result.stdout
    assert not list(tmp_path.glob("storage/**/*.db"))
