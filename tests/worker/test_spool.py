"""The local spool for attempt records the database refused: files on disk, flushed later."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from dispatcher.store import AttemptRecord
from dispatcher.worker import spool


def record(n: int = 1) -> AttemptRecord:
    return AttemptRecord(
        request_id=f"00000000-0000-4000-8000-00000000000{n}",
        event="order_changed",
        endpoint="partner-a",
        url="https://partner.example.com/h",
        attempt=1,
        outcome="delivered",
        created_at=datetime(2026, 11, 27, 1, 2, 3, 456789, tzinfo=UTC),
        http_status=200,
        request_headers={"X-Webhook-Key": "[redacted]"},
    )


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_held_records_are_written_once_by_flush(tmp_path) -> None:
    held = [spool.hold(str(tmp_path), record(n), "w1", None) for n in (1, 2)]
    assert all(p.exists() for p in held)
    written = []
    assert spool.flush(str(tmp_path), lambda r, w, why: written.append((r, w, why))) == 2
    assert written == [(record(1), "w1", None), (record(2), "w1", None)]
    assert list(tmp_path.iterdir()) == []
    assert spool.flush(str(tmp_path), lambda *a: written.append(a)) == 0


def test_a_failed_write_puts_the_file_back(tmp_path) -> None:
    spool.hold(str(tmp_path), record(), "w1", "why")

    def refuse(*_args):
        raise RuntimeError("database away")

    with pytest.raises(RuntimeError):
        spool.flush(str(tmp_path), refuse)
    assert len(spool.pending(str(tmp_path))) == 1


def test_a_file_left_by_a_flusher_that_died_is_written_by_the_next_flush(tmp_path) -> None:
    held = spool.hold(str(tmp_path), record(), "w1", None)
    orphan = held.with_name(f".{held.name}.{dead_pid()}.flushing")
    os.rename(held, orphan)
    mine = spool.hold(str(tmp_path), record(2), "w1", None)
    in_progress = mine.with_name(f".{mine.name}.{os.getpid()}.flushing")  # a live flusher's
    os.rename(mine, in_progress)

    written = []
    assert spool.flush(str(tmp_path), lambda r, w, why: written.append(r)) == 1
    assert written == [record()]
    assert in_progress.exists()  # a live process's file is left to it
    assert not orphan.exists()


def test_a_record_refused_for_good_is_set_aside_and_the_others_are_written(tmp_path) -> None:
    for n in (1, 2, 3):
        spool.hold(str(tmp_path), record(n), "w1", None)
    written, aside = [], []

    def refuse_the_second(r, _worker, _reason):
        if r.request_id.endswith("2"):
            raise ValueError("bad data")
        written.append(r.request_id[-1])

    n = spool.flush(
        str(tmp_path),
        refuse_the_second,
        retry_later=lambda exc: not isinstance(exc, ValueError),
        set_aside=lambda path, exc: aside.append(path.name),
    )
    assert n == 2 and written == ["1", "3"]
    assert len(aside) == 1 and aside[0].endswith(".json.rejected")
    assert spool.pending(str(tmp_path)) == []  # a set-aside file is not tried again
    assert (tmp_path / aside[0]).exists()


def test_the_database_away_stops_the_flush_and_keeps_every_file(tmp_path) -> None:
    for n in (1, 2):
        spool.hold(str(tmp_path), record(n), "w1", None)

    def away(*_args):
        raise ConnectionError("database away")

    with pytest.raises(ConnectionError):
        spool.flush(str(tmp_path), away, retry_later=lambda exc: True)
    assert len(spool.pending(str(tmp_path))) == 2


def test_a_held_record_keeps_its_phi_sealed_on_disk(tmp_path) -> None:
    from dataclasses import replace

    from dispatcher.store.sealing import Keyring, new_key

    keyring = Keyring([new_key()])
    phi = replace(
        record(), request_payload='{"message": "Take 5 mg Warfarin"}', response_body="echo Warfarin"
    )
    path = spool.hold(str(tmp_path), phi, "w1", None, keyring.seal)
    assert b"Warfarin" not in path.read_bytes()
    written = []
    spool.flush(str(tmp_path), lambda r, w, why: written.append(r))
    (back,) = written
    assert keyring.open(back.request_payload) == phi.request_payload  # written to the log as sealed
    assert keyring.open(back.response_body) == phi.response_body
