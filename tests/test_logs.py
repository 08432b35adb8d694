"""The process log (dispatcher.logs): daily files, a symlink, retention, many writers, redaction;
and the worker's terminal."""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from dispatcher import logs

DAY = date(2026, 3, 14)
PROCESSES = 4
LINES_PER_PROCESS = 500


def at(day: date, hour: int = 12) -> float:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp()


def record(message: str, created: float, level: int = logging.INFO, args=None) -> logging.LogRecord:
    rec = logging.LogRecord("dispatcher.process", level, __file__, 1, message, args, None)
    rec.created = created
    return rec


def dated(base: Path, day: date) -> Path:
    return base.with_name(f"{base.stem}-{day.isoformat()}{base.suffix}")


def read_all(base: Path) -> list[str]:
    """Every line of every dated file beside ``base`` (robust to the real clock passing midnight)."""
    lines: list[str] = []
    for path in sorted(base.parent.glob(f"{base.stem}-*{base.suffix}")):
        lines.extend(path.read_text(encoding="utf-8").splitlines())
    return lines


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "send-webhook-request-process.log"


@pytest.fixture
def handler(base: Path):
    h = logs.DailyFileHandler(base, retention_days=14)
    h.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    yield h
    h.close()


@pytest.fixture
def process_logger_state():
    """Restores the process logger after a test that configures it."""
    logger = logging.getLogger(logs.LOGGER_NAME)
    saved = (list(logger.handlers), list(logger.filters), logger.level, logger.propagate)
    yield logger
    for h in list(logger.handlers):
        logger.removeHandler(h)
        if h not in saved[0]:
            h.close()
    for f in list(logger.filters):
        logger.removeFilter(f)
    for h in saved[0]:
        logger.addHandler(h)
    for f in saved[1]:
        logger.addFilter(f)
    logger.setLevel(saved[2])
    logger.propagate = saved[3]


# --- daily file and symlink -----------------------------------------------------------------


def test_writes_to_a_dated_file_beside_the_configured_path(base, handler):
    handler.handle(record("first line", at(DAY)))
    target = base.parent / "send-webhook-request-process-2026-03-14.log"
    assert target.is_file()
    assert target.read_text() == "INFO first line\n"
    assert handler.path_for(DAY) == target


def test_configured_path_is_a_symlink_to_todays_file(base, handler):
    handler.handle(record("hello", at(DAY)))
    assert base.is_symlink()
    assert os.readlink(base) == "send-webhook-request-process-2026-03-14.log"
    assert base.resolve() == dated(base, DAY).resolve()
    assert base.read_text() == "INFO hello\n"


def test_a_new_day_opens_a_new_file_and_moves_the_symlink(base, handler):
    handler.handle(record("day one", at(DAY, 23)))
    handler.handle(record("day two", at(DAY + timedelta(days=1), 0)))
    handler.handle(record("day two again", at(DAY + timedelta(days=1), 1)))
    assert dated(base, DAY).read_text() == "INFO day one\n"
    assert dated(base, DAY + timedelta(days=1)).read_text() == "INFO day two\nINFO day two again\n"
    assert os.readlink(base) == dated(base, DAY + timedelta(days=1)).name
    assert base.read_text() == "INFO day two\nINFO day two again\n"


def test_days_are_utc_days(base, handler):
    # 23:30 UTC on the 14th is already the 15th in UTC+2 but must land in the 14th's file.
    handler.handle(record("late", datetime(2026, 3, 14, 23, 30, tzinfo=UTC).timestamp()))
    assert dated(base, DAY).read_text() == "INFO late\n"


def test_lines_are_appended_not_overwritten(base):
    for n in range(3):
        h = logs.DailyFileHandler(base)
        h.setFormatter(logging.Formatter("%(message)s"))
        h.handle(record(f"run {n}", at(DAY)))
        h.close()
    assert dated(base, DAY).read_text() == "run 0\nrun 1\nrun 2\n"


def test_a_multiline_message_stays_one_line(base, handler):
    handler.handle(record("one\ntwo\nthree", at(DAY)))
    assert dated(base, DAY).read_text() == "INFO one | two | three\n"


def test_a_plain_file_at_the_configured_path_is_left_alone(base, handler):
    base.parent.mkdir(parents=True)
    base.write_text("operator's own file\n")
    handler.handle(record("x", at(DAY)))
    assert not base.is_symlink()
    assert base.read_text() == "operator's own file\n"
    assert dated(base, DAY).read_text() == "INFO x\n"


# --- many writer processes ------------------------------------------------------------------


def _line(proc: int, n: int) -> str:
    head = f"proc={proc} line={n:04d} "
    filler = chr(ord("A") + proc) * (300 - len(head) - 4)
    return f"{head}{filler} end"


def _writer(path: str, proc: int, created: float) -> None:
    h = logs.DailyFileHandler(path, retention_days=14)
    h.setFormatter(logging.Formatter("%(message)s"))
    for n in range(LINES_PER_PROCESS):
        h.handle(record(_line(proc, n), created))
    h.close()


def test_several_processes_write_whole_lines(base):
    ctx = multiprocessing.get_context("fork")
    created = at(DAY)
    workers = [ctx.Process(target=_writer, args=(str(base), p, created)) for p in range(PROCESSES)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * PROCESSES

    raw = dated(base, DAY).read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.decode("utf-8").split("\n")[:-1]
    expected = Counter(_line(p, n) for p in range(PROCESSES) for n in range(LINES_PER_PROCESS))
    assert len(lines) == PROCESSES * LINES_PER_PROCESS
    assert all(len(line) == 300 for line in lines)
    assert Counter(lines) == expected
    # Each process's own lines keep their order.
    for p in range(PROCESSES):
        own = [line for line in lines if line.startswith(f"proc={p} ")]
        assert own == [_line(p, n) for n in range(LINES_PER_PROCESS)]
    assert os.readlink(base) == dated(base, DAY).name


# --- retention ------------------------------------------------------------------------------


def test_retention_deletes_old_files_when_a_new_days_file_opens(base):
    base.parent.mkdir(parents=True)
    for back in range(1, 8):
        dated(base, DAY - timedelta(days=back)).write_text(f"{back} days ago\n")
    unrelated = [
        base.parent / "other-log-2020-01-01.log",
        base.parent / "send-webhook-request-process-notes.log",
        base.parent / "send-webhook-request-process-2020-01-01.log.gz",
    ]
    for path in unrelated:
        path.write_text("keep\n")

    h = logs.DailyFileHandler(base, retention_days=3)
    h.setFormatter(logging.Formatter("%(message)s"))
    try:
        # Before anything is written, nothing is pruned.
        assert dated(base, DAY - timedelta(days=7)).exists()

        h.handle(record("today", at(DAY)))
        kept = {DAY, DAY - timedelta(days=1), DAY - timedelta(days=2)}
        for back in range(0, 8):
            day = DAY - timedelta(days=back)
            assert dated(base, day).exists() == (day in kept), day

        # The next day's first line opens a new file and prunes one more.
        h.handle(record("tomorrow", at(DAY + timedelta(days=1))))
        assert not dated(base, DAY - timedelta(days=2)).exists()
        assert dated(base, DAY - timedelta(days=1)).exists()
        assert dated(base, DAY).read_text() == "today\n"
        assert dated(base, DAY + timedelta(days=1)).read_text() == "tomorrow\n"

        # More lines on the same day prune nothing further.
        h.handle(record("tomorrow again", at(DAY + timedelta(days=1), 18)))
        assert dated(base, DAY - timedelta(days=1)).exists()
    finally:
        h.close()
    for path in unrelated:
        assert path.read_text() == "keep\n"


def test_retention_of_one_day_keeps_only_today(base):
    base.parent.mkdir(parents=True)
    dated(base, DAY - timedelta(days=1)).write_text("yesterday\n")
    h = logs.DailyFileHandler(base, retention_days=1)
    try:
        h.handle(record("today", at(DAY)))
    finally:
        h.close()
    assert not dated(base, DAY - timedelta(days=1)).exists()
    assert dated(base, DAY).exists()


# --- redaction ------------------------------------------------------------------------------

SECRET = "sk_live_9f8e7d6c5b4a"
OTHER = "partner-b-key-0042"


def test_redacting_filter_masks_secrets_in_the_message():
    f = logs.RedactingFilter([SECRET, OTHER])
    rec = record(f"key {SECRET} and {OTHER} leaked", at(DAY))
    assert f.filter(rec) is True
    assert rec.getMessage() == f"key {logs.MASK} and {logs.MASK} leaked"


def test_redacting_filter_masks_secrets_passed_as_args():
    f = logs.RedactingFilter([SECRET])
    rec = record(
        "headers=%s url=%s", at(DAY), args=({"X-Webhook-Key": SECRET}, "https://x.test/?k=" + SECRET)
    )
    f.filter(rec)
    message = rec.getMessage()
    assert SECRET not in message
    assert message.count(logs.MASK) == 2
    assert "X-Webhook-Key" in message


def test_redacting_filter_prefers_the_longest_secret():
    f = logs.RedactingFilter(["abc", "abcdef"])
    rec = record("value abcdef", at(DAY))
    f.filter(rec)
    assert rec.getMessage() == f"value {logs.MASK}"


def test_redacting_filter_without_secrets_leaves_the_record_alone():
    f = logs.RedactingFilter(["", ""])
    rec = record("a %s", at(DAY), args=("b",))
    assert f.filter(rec) is True
    assert rec.msg == "a %s" and rec.args == ("b",)


def test_configured_secrets_never_reach_the_file(base, process_logger_state):
    logger = logs.setup_process_log(str(base), 14, [SECRET])
    logger.warning("sent with key %s", SECRET)
    logs.log_line(logging.WARNING, "attempt", key=SECRET, error=f"rejected {SECRET}")
    text = "\n".join(read_all(base))
    assert SECRET not in text
    assert text.count(logs.MASK) == 3


def test_secret_in_a_logged_exception_is_masked(base, process_logger_state):
    logger = logs.setup_process_log(str(base), 14, [SECRET])
    try:
        raise RuntimeError(f"endpoint refused key {SECRET}")
    except RuntimeError:
        logger.exception("delivery crashed")
    assert SECRET not in "\n".join(read_all(base))


def test_redacting_filter_masks_a_secret_however_it_was_escaped():
    secret = "sk_live_9f8e7d6c\n"  # a key from a YAML block scalar
    f = logs.RedactingFilter([secret])
    for spelling in (
        secret,
        repr(secret),
        json.dumps(secret),
        quote(secret),
        secret.strip(),
        json.dumps(repr(secret)),
    ):
        rec = record("rejected %s", at(DAY), args=(spelling,))
        f.filter(rec)
        assert "9f8e" not in rec.getMessage(), spelling
        assert logs.MASK in rec.getMessage()


def test_escaped_secrets_never_reach_the_file(base, process_logger_state):
    secret = "partner key/42"
    logs.setup_process_log(str(base), 14, [secret])
    logs.log_line(logging.WARNING, "attempt", error=f"InvalidHeader: header value {secret!r}")
    logs.log_line(logging.WARNING, "attempt", url="https://p.example.com/?k=" + quote(secret, safe=""))
    logs.log_line(logging.WARNING, "attempt", body=json.dumps({"echo": secret}))
    text = "\n".join(read_all(base))
    assert "key/42" not in text and "key%2F42" not in text
    assert text.count(logs.MASK) == 3


def test_a_malformed_log_call_does_not_raise(base, process_logger_state):
    logger = logs.setup_process_log(str(base), 14, [SECRET])
    logger.info("%d attempts", "three")


# --- log_line and setup ---------------------------------------------------------------------

LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (?P<level>[A-Z]+) (?P<rest>.*)$")


def test_log_line_formats_key_value_pairs(base, process_logger_state):
    logs.setup_process_log(str(base), 14, [])
    logs.log_line(
        logging.INFO,
        "attempt",
        request_id="2b0c7c9e-6a0b-4f0e-9a55-0c1d3f3b7e21",
        event="patient.created",
        attempt=2,
        http_status=None,
        error="HTTP 503 Service Unavailable",
        empty="",
        duration_ms=41,
    )
    (line,) = read_all(base)
    match = LINE.match(line)
    assert match, line
    assert match["level"] == "INFO"
    assert match["rest"] == (
        "attempt request_id=2b0c7c9e-6a0b-4f0e-9a55-0c1d3f3b7e21 event=patient.created attempt=2 "
        'http_status=- error="HTTP 503 Service Unavailable" empty="" duration_ms=41'
    )


def test_log_line_levels(base, process_logger_state):
    logs.setup_process_log(str(base), 14, [])
    logs.log_line(logging.WARNING, "attempt", outcome="failed")
    logs.log_line(logging.DEBUG, "noise", outcome="none")
    lines = read_all(base)
    assert len(lines) == 1
    match = LINE.match(lines[0])
    assert match["level"] == "WARNING"
    assert match["rest"] == "attempt outcome=failed"


def test_log_line_does_not_propagate_to_the_root_logger(base, process_logger_state, caplog):
    logs.setup_process_log(str(base), 14, [])
    with caplog.at_level(logging.INFO):
        logs.log_line(logging.WARNING, "attempt", outcome="failed")
    assert caplog.records == []
    assert len(read_all(base)) == 1


def test_setup_process_log_twice_does_not_duplicate_lines(base, process_logger_state):
    first = logs.setup_process_log(str(base), 14, [SECRET])
    second = logs.setup_process_log(str(base), 14, [SECRET])
    assert first is second
    assert len(second.handlers) == 1
    assert len(second.filters) == 1
    logs.log_line(logging.INFO, "once", n=1)
    lines = read_all(base)
    assert len(lines) == 1
    assert lines[0].endswith("INFO once n=1")


def test_setup_process_log_again_switches_to_the_new_path(base, tmp_path, process_logger_state):
    logs.setup_process_log(str(base), 14, [])
    logs.log_line(logging.INFO, "old", n=1)
    other = tmp_path / "elsewhere" / "p.log"
    logs.setup_process_log(str(other), 14, [])
    logs.log_line(logging.INFO, "new", n=2)
    assert [line.split(" ", 2)[2] for line in read_all(base)] == ["old n=1"]
    assert [line.split(" ", 2)[2] for line in read_all(other)] == ["new n=2"]


# --- the worker's terminal ------------------------------------------------------------------


@pytest.fixture
def terminal_state():
    """Restores the terminal logger (silent) after a test that sets it up."""
    logger = logging.getLogger(logs.TERMINAL_LOGGER_NAME)
    saved = (list(logger.handlers), list(logger.filters), logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.filters[:] = saved[0], saved[1]
    logger.setLevel(saved[2])
    logger.propagate = saved[3]


def test_say_prints_nothing_anywhere_until_a_worker_sets_the_terminal_up(terminal_state, caplog, capsys):
    for handler in list(terminal_state.handlers):
        terminal_state.removeHandler(handler)
    with caplog.at_level(logging.DEBUG):
        logs.say("17:02:11  order_changed  pharmacy  3f9a2c1e  delivered 200  41 ms")
    assert caplog.records == []
    assert capsys.readouterr() == ("", "")


def test_say_prints_one_line_as_it_is_on_the_terminal(terminal_state):
    stream = io.StringIO()
    logs.setup_terminal([SECRET], stream)
    logs.say("17:02:11  order_changed  pharmacy  3f9a2c1e  delivered 200  41 ms")
    logs.say(f"a line with {SECRET}, a newline\nand an escape \x1b[31m")
    assert stream.getvalue().splitlines() == [
        "17:02:11  order_changed  pharmacy  3f9a2c1e  delivered 200  41 ms",
        f"a line with {logs.MASK}, a newline\\x0aand an escape \\x1b[31m",
    ]


def test_setup_terminal_again_replaces_the_stream_and_prints_on_stdout_by_default(terminal_state, capsys):
    first = io.StringIO()
    logs.setup_terminal([], first)
    logs.setup_terminal([])
    logs.say("once")
    assert first.getvalue() == ""
    assert capsys.readouterr().out == "once\n"
    assert len(terminal_state.handlers) == 1 and terminal_state.propagate is False


def test_secrets_learnt_later_are_masked_too(tmp_path: Path) -> None:
    path = tmp_path / "process.log"
    logs.setup_process_log(str(path), 14, ["first-secret-1"])
    logs.mask_also(["first-secret-1", "added-later-2"])
    logs.log_line(logging.INFO, "said", one="first-secret-1", two="added-later-2")
    text = path.read_text()
    assert "first-secret-1" not in text and "added-later-2" not in text and "said" in text
    filters = [f for f in logs.process_logger().filters if isinstance(f, logs.RedactingFilter)]
    assert len(filters) == 1
