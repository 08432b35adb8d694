"""What a partner answers is PHI (issue 21, findings 5 and 6), through a real ``python worker.py``
process, the real Redis, SQLite and a real HTTP partner whose ``422`` names the patient in a
60,000-character reason phrase and a body carrying terminal escapes: the attempt keeps at most
200 characters of the phrase, sealed with the storage keys (not in the database file's bytes);
the process log says the status code and never the phrase; ``log erase`` leaves none of it in the
file; ``log show`` prints the escapes as text."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dispatcher import dispatch, store
from dispatcher.store.sealing import new_key
from tests.conftest import ROOT, wait_for

MARKER = "Jane Roe"
REASON = f"Unprocessable: patient {MARKER}, DOB 1961-04-12 \x1b[2J" + "x" * 60_000
BODY = f'{{"detail": "patient {MARKER} unknown"}}\x1b]0;all delivered\x07'.encode()


class _Pharmacy(BaseHTTPRequestHandler):
    """Answers every POST ``422`` with :data:`REASON` and :data:`BODY`."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(422, REASON)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


@pytest.fixture
def pharmacy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pharmacy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def message() -> dict:
    return {
        "patient_id": "PAT-E2E",
        "encounter_id": "ENC-E2E",
        "author_id": "DR-1",
        "is_doctor": True,
        "channel": "patient",
        "message": "see you Friday",
        "attachment": [],
        "created_at": "2026-12-01T09:00:00Z",
    }


def cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DISPATCHER_CONFIG": str(config)}
    for name in ("DISPATCHER_REDIS_URL", "DISPATCHER_DATABASE_URL", "DISPATCHER_STORAGE_KEYS"):
        environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def failed_once(make_runtime, write_config, start_worker, pharmacy: str, **settings):
    """One delivery to the pharmacy, failed by its 422: (runtime, config, worker, request_id)."""
    endpoints = [{"name": "pharmacy", "url": pharmacy, "key": "pharmacy-key-123"}]
    runtime = make_runtime(endpoints=endpoints, **settings)
    config = write_config(endpoints=endpoints, **settings)
    worker = start_worker(config)
    (request_id,) = dispatch("message_created", message())
    wait_for(
        lambda: store.get_delivery(runtime.engine, request_id)["status"] == "failed",
        timeout=40,
        message="the delivery failed by its 422",
    )
    return runtime, config, worker, request_id


def database_bytes(runtime) -> bytes:
    database = Path(runtime.settings.database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))


def process_log(runtime) -> str:
    folder = Path(runtime.settings.process_log).parent
    return "".join(p.read_text(errors="replace") for p in folder.glob("*.log") if not p.is_symlink())


def test_a_partners_answer_is_capped_sealed_and_kept_out_of_the_process_log(
    make_runtime, write_config, start_worker, pharmacy
) -> None:
    runtime, config, worker, request_id = failed_once(
        make_runtime, write_config, start_worker, pharmacy, storage_keys=[new_key()]
    )

    (attempt,) = store.list_attempts(runtime.engine, request_id)
    assert attempt["http_status"] == 422 and attempt["error"].startswith(
        f"HTTP 422 Unprocessable: patient {MARKER}"
    )
    assert len(attempt["error"]) <= len("HTTP 422 ") + 200, len(attempt["error"])
    assert store.get_delivery(runtime.engine, request_id)["reason"] == "HTTP 422 is not retried"
    assert MARKER.encode() not in database_bytes(runtime)  # sealed: error and body alike
    log = process_log(runtime)
    (line,) = [
        line for line in log.splitlines() if f"request_id={request_id}" in line and " attempt " in line
    ]
    assert "http_status=422" in line and "outcome=failed" in line
    assert MARKER not in log and "Unprocessable" not in log and "xxxxxxxxxx" not in log
    assert max(len(line) for line in log.splitlines()) < 1000
    assert MARKER not in worker.output()


def test_log_show_prints_the_partners_escapes_as_text(
    make_runtime, write_config, start_worker, pharmacy
) -> None:
    runtime, config, worker, request_id = failed_once(make_runtime, write_config, start_worker, pharmacy)

    shown = cli("log", "show", request_id, config=config)

    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "DOB 1961-04-12 \\x1b[2Jxxx" in shown.stdout and "\\x1b]0;all delivered\\x07" in shown.stdout


def test_log_erase_leaves_no_partner_answer_in_the_database_file(
    make_runtime, write_config, start_worker, pharmacy
) -> None:
    runtime, config, worker, request_id = failed_once(make_runtime, write_config, start_worker, pharmacy)
    assert MARKER.encode() in database_bytes(runtime)  # no storage keys: stored as it is
    worker.stop()

    erased = cli("log", "erase", request_id, "--yes", config=config)

    assert erased.returncode == 0, erased.stderr
    (attempt,) = store.list_attempts(runtime.engine, request_id)
    assert attempt["error"] is None and attempt["response_body"] is None and attempt["http_status"] == 422
    runtime.engine.dispose()
    assert MARKER.encode() not in database_bytes(runtime)
