"""What a partner answers is printed, never obeyed: ``log show`` and every table show a stored
text's control characters as escapes (``\\x1b``), so an answer cannot clear, recolour or
rewrite an operator's terminal; ``--json`` stays the exact JSON of the stored text (issue 21,
finding 6). The rows are inserted as a worker leaves them."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import subprocess
import sys
import uuid

from click.testing import CliRunner

from dispatcher import store
from dispatcher.cli import cli
from dispatcher.contract import catalogue as events
from dispatcher.contract.wrapper import build, dumps
from dispatcher.times import utcnow
from dispatcher.vocabulary import AttemptOutcome, DeliveryStatus

CLEAR = "\x1b[2J\x1b[H"
"""Clears the screen and puts the cursor home."""
TITLE = "\x1b]0;all delivered\x07"
"""Sets the terminal's title (OSC ... BEL)."""
FLIP = "\u202eoK\u202c"
"""A right-to-left override: shows the text reversed."""
ERROR = f"HTTP 422 Unprocessable{CLEAR}everything is fine{FLIP}\r\x9b31m"
BODY = f'{{"detail": "bad"}}{TITLE}\n{CLEAR}second line\x7f'
RAW = ("\x1b", "\x07", "\x9b", "\x7f", "\u202e", "\r")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def insert_answered_row(runtime, endpoint: str = "partner-a") -> str:
    """A failed delivery whose one attempt holds the partner's hostile answer."""
    request_id = str(uuid.uuid4())
    now = utcnow()
    common = {"request_id": request_id, "event": "message_created", "endpoint": endpoint, "url": "http://x/a"}
    payload = dumps(
        build(
            event="message_created",
            timestamp="2026-01-30T12:00:00Z",
            data=events.CATALOGUE["message_created"].example(),
            source="Baremeds",
            environment="test",
            request_id=request_id,
            dispatched_by="SYSTEM",
        )
    )
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.insert().values(
                **common,
                status=DeliveryStatus.FAILED,
                attempts=1,
                attempt_limit=5,
                last_http_status=422,
                reason="HTTP 422 is not retried",
                payload=payload,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            store.ATTEMPTS.insert().values(
                **common,
                attempt=1,
                retry=False,
                outcome=AttemptOutcome.FAILED,
                http_status=422,
                error=ERROR,
                response_body=BODY,
                duration_ms=12,
                request_payload=payload,
                request_headers="{}",
                created_at=now,
            )
        )
    return request_id


def test_log_show_prints_a_partners_control_characters_as_escapes(make_runtime) -> None:
    runtime = make_runtime()
    request_id = insert_answered_row(runtime)

    result = invoke("log", "show", request_id)

    assert result.exit_code == 0, result.output
    shown = result.stdout
    assert not [c for c in RAW if c in shown], f"raw control characters reached the terminal: {shown!r}"
    assert "Unprocessable\\x1b[2J\\x1b[Heverything is fine\\u202eoK\\u202c\\x0d\\x9b31m" in shown
    assert "\\x1b]0;all delivered\\x07" in shown and "second line\\x7f" in shown
    assert "\n\\x1b[2J\\x1b[Hsecond line" in shown  # a body keeps its lines, nothing else


def test_log_show_json_keeps_the_exact_text(make_runtime) -> None:
    runtime = make_runtime()
    request_id = insert_answered_row(runtime)

    result = invoke("log", "show", request_id, "--json")

    assert result.exit_code == 0, result.output
    (attempt,) = json.loads(result.stdout)["attempts"]
    assert attempt["error"] == ERROR and attempt["response_body"] == BODY
    assert "\x1b" not in result.stdout  # JSON escapes C0 itself (\u001b)


def test_a_table_cell_is_never_obeyed_or_read_as_markup(make_runtime) -> None:
    runtime = make_runtime()
    insert_answered_row(runtime, endpoint=f"[bold]partner[/bold]{CLEAR}")

    result = invoke("log", "list")

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    assert "[bold]partner[/bold]\\x1b[2J\\x1b[H" in result.stdout


def test_visible_escapes_c0_c1_del_separators_and_bidi_controls() -> None:
    from dispatcher.cli.output import visible

    assert visible("a\tb\nc\x00\x1b\x7f\x85\x9f") == "a\\x09b\\x0ac\\x00\\x1b\\x7f\\x85\\x9f"
    assert visible("\u2028\u2029\u202a\u202e\u2066\u2069\u200e\u200f\u061c") == (
        "\\u2028\\u2029\\u202a\\u202e\\u2066\\u2069\\u200e\\u200f\\u061c"
    )
    assert visible("a\tb\nc\r", keep_lines=True) == "a\tb\nc\\x0d"
    assert visible("Grüße, 東京 ✓") == "Grüße, 東京 ✓"


def _export_csv(config, stdout) -> subprocess.CompletedProcess:
    env = {**os.environ, "DISPATCHER_CONFIG": str(config)}
    env.pop("DISPATCHER_DATABASE_URL", None)
    command = [sys.executable, "-m", "dispatcher", "log", "export", "--format", "csv"]
    return subprocess.run(command, env=env, stdout=stdout, stderr=subprocess.PIPE, timeout=60, check=True)


def test_log_export_csv_to_a_terminal_shows_escapes_and_to_a_pipe_the_exact_text(
    make_runtime, write_config
) -> None:
    runtime = make_runtime()
    insert_answered_row(runtime)
    config = write_config()

    leader, follower = pty.openpty()
    try:
        _export_csv(config, follower)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end is closed: all was read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    on_terminal = b"".join(chunks).decode()
    lines = re.sub(r"\r*\n", "\n", on_terminal)  # the terminal ends lines with CR LF
    assert not [c for c in RAW if c in lines], on_terminal
    assert "Unprocessable\\x1b[2J\\x1b[Heverything is fine\\u202eoK\\u202c\\x0d\\x9b31m" in lines

    piped = _export_csv(config, subprocess.PIPE).stdout.decode()
    (row,) = list(csv.DictReader(io.StringIO(piped, newline="")))
    assert row["error"] == ERROR and row["response_body"] == BODY
