"""Times and durations, one way everywhere: UTC text, durations (``30m``, ``1h30m``), moments
(an ISO 8601 time or an age before now).

The config's ``window: 5d``, the CLI's ``--since 2h`` and ``--older-than 30d``, and
``simulate --duration 1m30s`` all read durations with :func:`parse_duration`, so they accept the
same spellings and refuse the same mistakes with the same words.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
"""Seconds per unit: seconds, minutes, hours, days, weeks."""
MAX_DURATION_SECONDS = timedelta.max.total_seconds()
"""The longest duration a ``timedelta`` holds (about 2.7 million years)."""

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_SPELLINGS = "seconds (90, 0.5) or units: 45s, 30m, 12h, 5d, 2w, 1h30m"


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_utc(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC; a naive datetime is taken as UTC."""
    if moment.tzinfo is not None and moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="seconds")[:19] + "Z"


def parse_duration(value: str | int | float) -> float:
    """Seconds from a number of seconds (``90``, ``0.5``, ``"90"``), one unit (``45s``, ``30m``,
    ``12h``, ``5d``, ``2w``) or several together (``1m30s``, ``1h 15m``).

    Raises:
        ValueError: any other spelling, 0 or less, or longer than a ``timedelta`` holds; the
            message quotes the value (cut short) and says what is expected.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; use {_SPELLINGS}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"{_quote(value)} is longer than any time this program can count") from None
    else:
        text = str(value).strip()
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        else:
            parts = _PART.findall(text)
            if not parts or re.sub(r"\s+", "", text) != "".join(n + u for n, u in parts):
                raise ValueError(f"{_quote(value)} is not a duration; use {_SPELLINGS}")
            seconds = sum(float(n) * UNITS[u] for n, u in parts)
    if not seconds > 0:
        raise ValueError(f"{_quote(value)}: the duration must be longer than 0")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"{_quote(value)} is longer than any time this program can count")
    return seconds


def parse_moment(value: str | datetime, now: datetime | None = None) -> datetime:
    """A moment from an ISO 8601 time (``Z`` or an offset; naive means UTC) or an age before
    ``now`` (any :func:`parse_duration` spelling with a unit: ``30m``, ``2h``, ``7d``).

    Raises:
        ValueError: neither, or an age reaching back before the year 1.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if _PART.match(text):
        seconds = parse_duration(text)
        try:
            return (now or utcnow()) - timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError(
                f"{_quote(text)} reaches back before the year 1; give a shorter age or an ISO 8601 time"
            ) from None
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ValueError(f"{_quote(text)} is neither an ISO 8601 time nor an age like 30m, 2h, 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _quote(value: object, limit: int = 40) -> str:
    """The value as the user wrote it, cut short: an error never repeats an unbounded input."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"a number of about {int(value.bit_length() * 0.30103):,} digits"
    text = repr(value) if not isinstance(value, str) else repr(value[:limit].strip())
    return text if len(text) <= limit else text[: limit - 4] + "...'"
