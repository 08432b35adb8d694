"""The process log: one line per attempt, daily files, safe for many writer processes.

Like Laravel's ``daily`` channel, each day has its own file beside the configured path
(``send-webhook-request-process-2026-11-26.log``), and the configured path itself is a symlink
to today's file. Every line is one ``write()`` on a file opened with ``O_APPEND``, which the
kernel keeps whole when several processes append at once, and no file is ever renamed, so
there is nothing for two processes to race over. Files older than the retention are deleted
at the first line of a new day.

Never a key, never the event's ``data``: callers log identifiers and outcomes only, and a
redacting filter masks every configured secret should one reach a message anyway.

Besides, the worker's terminal (:func:`setup_terminal`, :func:`say`): one short line per attempt
on stdout for the person watching it, printed only where a worker set it up.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from .redaction import MASK as MASK
from .redaction import Masker

LOGGER_NAME = "dispatcher.process"
TERMINAL_LOGGER_NAME = "dispatcher.terminal"
logging.getLogger(TERMINAL_LOGGER_NAME).propagate = False  # silent until a worker sets it up


class DailyFileHandler(logging.Handler):
    """Appends each record to ``<stem>-YYYY-MM-DD<suffix>`` (UTC days); keeps ``retention_days``."""

    def __init__(self, path: str | os.PathLike[str], retention_days: int = 14) -> None:
        super().__init__()
        self.base = Path(path)
        self.retention_days = retention_days
        self._day: date | None = None
        self._fd: int | None = None
        self._guard = threading.Lock()

    def path_for(self, day: date) -> Path:
        return self.base.with_name(f"{self.base.stem}-{day.isoformat()}{self.base.suffix}")

    def _open(self, day: date) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self.base.parent.mkdir(parents=True, exist_ok=True)
        target = self.path_for(day)
        self._fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._day = day
        self._point_link(target)
        self._prune(day)

    def _point_link(self, target: Path) -> None:
        # Replace the symlink atomically; a plain file left at the path is left alone.
        if self.base.exists() and not self.base.is_symlink():
            return
        temp = self.base.with_name(f".{self.base.name}.{os.getpid()}.tmp")
        try:
            temp.unlink(missing_ok=True)
            temp.symlink_to(target.name)
            os.replace(temp, self.base)
        except OSError:
            temp.unlink(missing_ok=True)

    def _prune(self, today: date) -> None:
        oldest = today - timedelta(days=self.retention_days - 1)
        pattern = re.compile(
            re.escape(self.base.stem) + r"-(\d{4}-\d{2}-\d{2})" + re.escape(self.base.suffix) + "$"
        )
        for candidate in self.base.parent.iterdir():
            match = pattern.match(candidate.name)
            if not match:
                continue
            try:
                if date.fromisoformat(match.group(1)) < oldest:
                    candidate.unlink(missing_ok=True)
            except (ValueError, OSError):
                continue

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record).replace("\n", " | ") + "\n").encode("utf-8", errors="replace")
            today = datetime.fromtimestamp(record.created, UTC).date()
            with self._guard:
                if self._day != today or self._fd is None:
                    self._open(today)
                assert self._fd is not None
                os.write(self._fd, line)
        except Exception:  # noqa: BLE001 - logging must never break a delivery
            self.handleError(record)

    def close(self) -> None:
        with self._guard:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        super().close()


class RedactingFilter(logging.Filter):
    """Masks every configured secret in the final message, however it was escaped on the way
    (:class:`dispatcher.redaction.Masker`: raw, repr- or JSON-escaped, URL-quoted, stripped)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.masker = Masker(secrets)
        self.secrets = list(self.masker.secrets)

    def mask(self, text: str) -> str:
        return self.masker.mask(text)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.masker:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed call is logging's to report, not the caller's
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self.mask(message), None
        if record.exc_info:
            record.exc_text = self.mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


class UTCFormatter(logging.Formatter):
    converter = staticmethod(lambda t: datetime.fromtimestamp(t, UTC).timetuple())

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def setup_process_log(path: str, retention_days: int, secrets: list[str]) -> logging.Logger:
    """Configures the process logger once per process (calling again replaces the handler)."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    for old in list(logger.filters):
        logger.removeFilter(old)
    handler = DailyFileHandler(path, retention_days)
    handler.setFormatter(UTCFormatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.addFilter(RedactingFilter(secrets))
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def mask_also(secrets: list[str]) -> None:
    """Adds ``secrets`` to what the process log masks (an endpoint added or a key rotated while
    the process runs); the ones it masks already stay masked."""
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.filters):
        if isinstance(old, RedactingFilter):
            known = set(old.secrets)
            if all(secret in known for secret in secrets if secret):
                return
            logger.removeFilter(old)
            logger.addFilter(RedactingFilter(old.secrets + [s for s in secrets if s not in known]))
            return


def process_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def _value(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)
    if not text or text == "-" or any(c in text for c in ' "='):
        return json.dumps(text, ensure_ascii=False)
    return text


def log_line(level: int, message: str, **fields: object) -> None:
    """One line: the message then ``key=value`` pairs (a value with spaces, quotes or ``=`` is
    JSON-quoted; ``-`` is None)."""
    rendered = " ".join(f"{k}={_value(v)}" for k, v in fields.items())
    process_logger().log(level, "%s %s", message, rendered) if rendered else process_logger().log(
        level, "%s", message
    )


def setup_terminal(secrets: list[str], stream: TextIO | None = None) -> logging.Logger:
    """Prints what :func:`say` says on ``stream`` (stdout), each line as it is, secrets masked;
    calling again replaces the stream. Only a worker process calls this: elsewhere (tests, the
    demo, an application that dispatches) nothing is printed."""
    logger = logging.getLogger(TERMINAL_LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    for old in list(logger.filters):
        logger.removeFilter(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.addFilter(RedactingFilter(secrets))
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def say(line: str) -> None:
    """One line on the worker's terminal (if a worker set it up), control characters shown as
    escapes: the caller's words, never a payload, an answer's body or a key."""
    logging.getLogger(TERMINAL_LOGGER_NAME).info("%s", visible(line))


def _escapes(keep_lines: bool) -> dict[int, str]:
    table = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
    table.update({c: f"\\u{c:04x}" for c in (0x061C, 0x200E, 0x200F, 0x2028, 0x2029)})
    table.update({c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})
    if keep_lines:
        del table[ord("\n")], table[ord("\t")]
    return table


_CELL = _escapes(keep_lines=False)
_BLOCK = _escapes(keep_lines=True)


def visible(text: str, keep_lines: bool = False) -> str:
    """``text`` with every character that could move, recolour or reorder a terminal shown as an
    escape: C0 and C1 controls and DEL as ``\\xNN`` (ESC is ``\\x1b``), line and paragraph
    separators and bidirectional controls as ``\\uNNNN``. ``keep_lines`` keeps newlines and tabs
    (a block of text, such as an answer's body). What the log stores is a partner's as much as
    ours, so the CLI's tables and ``log show`` and the console's access log print it through
    this; ``--json`` prints it exactly."""
    return text.translate(_BLOCK if keep_lines else _CELL)
