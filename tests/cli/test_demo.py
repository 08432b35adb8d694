"""``dispatcher demo --keep`` on a real command line with the configured Redis: the whole path runs
and its database and process log stay in ./storage/demo for reading afterwards. The demo without
--keep, and with no Redis answering, is tested in tests/e2e/test_demo_e2e.py."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys


def test_demo_keep_leaves_its_database_and_process_log_in_storage_demo(tmp_path, redis_url) -> None:
    (tmp_path / "none.yaml").write_text("{}\n")
    env = {**os.environ, "DISPATCHER_REDIS_URL": redis_url, "DISPATCHER_CONFIG": str(tmp_path / "none.yaml")}

    result = subprocess.run(
        [sys.executable, "-m", "dispatcher", "demo", "--keep"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 of 6 delivered in 7 attempts" in result.stdout
    assert "the demo's database and process log are in storage/demo/" in result.stdout
    folder = tmp_path / "storage" / "demo"
    with sqlite3.connect(folder / "webhooks.db") as db:
        statuses = db.execute("SELECT status, count(*) FROM webhook_deliveries GROUP BY status").fetchall()
    assert statuses == [("delivered", 6)]
    assert (folder / "logs" / "send-webhook-request-process.log").stat().st_size > 0
