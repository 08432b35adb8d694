"""The PHI lifecycle through real `python worker.py` processes, the real Redis, SQLite and a real
HTTP receiver: a worker sends what it stored sealed, refuses to start on a database behind its
schema or (in production) without storage keys, and the CLI's ``db`` commands bring a database
made before migrations to head."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from dispatcher import dispatch, store
from dispatcher.errors import SchemaOutdated
from dispatcher.store import resealing, versioning
from dispatcher.store.sealing import PREFIX, new_key
from tests.conftest import ROOT, wait_for
from tests.store.test_migrations import load_legacy

KEY = "partner-secret-key-123"
TEXT = "Dose change: 5 mg Warfarin, recheck INR Friday"


def message() -> dict:
    return {
        "patient_id": "PAT-E2E",
        "encounter_id": "ENC-E2E",
        "author_id": "DR-1",
        "is_doctor": True,
        "channel": "patient",
        "message": TEXT,
        "attachment": [],
        "created_at": "2026-12-01T09:00:00Z",
    }


def cli(*args: str, config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DISPATCHER_CONFIG": str(config), **(env or {})}
    for name in ("DISPATCHER_REDIS_URL", "DISPATCHER_DATABASE_URL", "DISPATCHER_STORAGE_KEYS"):
        if name not in (env or {}):
            environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_a_worker_sends_what_it_stored_sealed(
    make_runtime, write_config, start_worker, receiver, tmp_path
) -> None:
    storage_key = new_key()
    endpoints = [{"name": "partner-a", "url": receiver.url, "key": KEY}]
    runtime = make_runtime(endpoints=endpoints, storage_keys=[storage_key])
    start_worker(write_config(endpoints=endpoints, storage_keys=[storage_key]))
    (request_id,) = dispatch("message_created", message())
    row = wait_for(
        lambda: (r := store.get_delivery(runtime.engine, request_id)) and r["status"] == "delivered" and r,
        timeout=40,
        message="the delivery",
    )
    (got,) = receiver.for_request(request_id)
    assert got.body["data"]["message"] == TEXT
    assert TEXT in row["payload"]
    with runtime.engine.connect() as conn:
        raw = [
            v
            for table, column, _ in resealing.COLUMNS
            for (v,) in conn.execute(sa.select(sa.type_coerce(table.c[column], sa.String())))
            if v is not None
        ]
    assert len(raw) == 3 and all(v.startswith(PREFIX) for v in raw)
    database = Path(runtime.settings.database_url.removeprefix("sqlite:///"))
    files = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert TEXT.encode() not in files and b"Warfarin" not in files


def test_a_worker_refuses_to_start_on_a_database_behind_then_runs_after_db_upgrade(
    write_config, start_worker, sqlite_url: str, receiver
) -> None:
    load_legacy(sqlite_url)
    config = write_config(endpoints=[{"name": "pharmacy", "url": receiver.url, "key": KEY}])
    worker = start_worker(config)
    assert worker.process.wait(timeout=30) == 1
    assert worker.output().strip().splitlines()[-1] == (
        "error: the log database is made before migrations (no revision yet); this version needs "
        f"{versioning.HEAD}: run: dispatcher db upgrade"
    )

    check = cli("db", "check", config=config)
    assert check.returncode == 1 and check.stderr.strip().endswith("run: dispatcher db upgrade")
    upgraded = cli("db", "upgrade", config=config)
    assert upgraded.returncode == 0, upgraded.stderr
    assert (
        f"upgraded 0002 (made before migrations, stamped) -> {versioning.HEAD}: "
        f"applied {', '.join(versioning.REVISIONS[2:])}" in upgraded.stdout
    )
    assert "applied 0002" not in upgraded.stdout
    assert "indexed 7 deliveries by patient and encounter key" in upgraded.stdout
    assert cli("db", "check", config=config).returncode == 0
    assert cli("db", "current", config=config).stdout.startswith(f"{versioning.HEAD}: at revision")
    again = cli("db", "upgrade", config=config)
    assert again.returncode == 0 and f"already at {versioning.HEAD}" in again.stdout

    engine = store.create_store_engine(sqlite_url)
    queued = [r["request_id"] for r in store.first_rows(engine, store.Selection(statuses=("queued",)), 10)]
    assert len(queued) == 1  # the legacy database's queued delivery is sent by the new worker
    worker = start_worker(config, name="after-upgrade")
    wait_for(
        lambda: store.get_delivery(engine, queued[0])["status"] == "delivered",
        timeout=60,
        message="the legacy queued delivery",
    )
    (got,) = receiver.for_request(queued[0])
    assert got.body["event"] == "order_changed" and got.headers["X-Webhook-Key"] == KEY
    assert worker.process.poll() is None
    engine.dispose()


def test_dispatch_raises_schema_outdated_on_a_database_behind(make_runtime, sqlite_url: str) -> None:
    load_legacy(sqlite_url)
    make_runtime(endpoints=[{"name": "partner-a", "url": "http://127.0.0.1:9/", "key": KEY}])
    with pytest.raises(SchemaOutdated, match=r"run: dispatcher db upgrade$"):
        dispatch("message_created", message())


def test_a_production_worker_refuses_to_start_without_storage_keys(write_config, start_worker) -> None:
    config = write_config(
        environment="production",
        endpoints=[{"name": "partner-a", "url": "https://partner.example.com/hook", "key": KEY}],
    )
    worker = start_worker(config)
    assert worker.process.wait(timeout=30) == 1
    last = worker.output().strip().splitlines()[-1]
    assert last.startswith("error: config: storage_keys: required in production")
    without = cli("config", "check", config=config)
    assert without.returncode == 1 and "error: config: storage_keys: required in production" in without.stderr
    with_keys = cli("config", "check", config=config, env={"DISPATCHER_STORAGE_KEYS": new_key()})
    assert with_keys.returncode == 0, with_keys.stderr
    assert json.loads(with_keys.stdout)["storage_keys"] == ["****"]  # shown masked
