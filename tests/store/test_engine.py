"""Opening the store: a new SQLite file opened by several processes at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from dispatcher import store
from dispatcher.store import versioning
from tests.conftest import ROOT


def test_a_new_sqlite_file_is_switched_to_wal_once_another_opener_lets_go(tmp_path: Path) -> None:
    """A process switching a new file to WAL holds its write lock for a moment, and SQLite
    answers "database is locked" at once, without waiting, to a second switch meanwhile (a worker
    starting while ``dispatcher send`` makes the file). The second waits instead of failing."""
    path = tmp_path / "webhooks.db"
    other = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the lock the other opener holds on the new file
    released = threading.Event()

    def let_go() -> None:
        time.sleep(0.5)
        other.execute("COMMIT")
        released.set()

    thread = threading.Thread(target=let_go)
    thread.start()
    try:
        engine = store.create_store_engine(f"sqlite:///{path}")
    finally:
        thread.join()
        other.close()
    assert released.is_set()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert versioning.state_of(conn).kind == "current"
    engine.dispose()


OPEN = """
import sys, time
from dispatcher import store
start = float(sys.argv[2])
while time.time() < start:
    pass
store.create_store_engine(f"sqlite:///{sys.argv[1]}").dispose()
"""


def test_processes_opening_a_new_sqlite_database_together_all_start(tmp_path: Path) -> None:
    """A worker, ``dispatcher send`` and the demo may make the same new file at one moment:
    every one of them starts, and the file is made at head once."""
    for round_ in range(3):
        path = tmp_path / f"together-{round_}.db"
        start = time.time() + 1.5  # after every interpreter has imported the package
        openers = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN, str(path), str(start)],
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        errors = [p.communicate(timeout=60)[1] for p in openers]
        assert [p.returncode for p in openers] == [0] * 6, "\n".join(e for e in errors if e)
        engine = store.create_store_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            assert versioning.state_of(conn).kind == "current"
            assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
        engine.dispose()
