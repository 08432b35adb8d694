"""Times and durations, one way everywhere (dispatcher.times): pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dispatcher.times import format_utc, parse_duration, parse_moment

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 26, 23, 1, 44, 102_000, tzinfo=UTC), "2026-11-26T23:01:44Z"),
        (
            datetime(2026, 11, 27, 1, 1, 44, 999_999, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-26T23:01:44Z",
        ),
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05Z"),  # naive is UTC
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05Z"),
    ],
)
def test_format_utc(moment: datetime, text: str) -> None:
    assert format_utc(moment) == text


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("60s", 60),
        ("2m", 120),
        ("90", 90),
        (90, 90),
        ("1m30s", 90),
        ("1h 15m", 4500),
        ("1h", 3600),
        ("0.5", 0.5),
        ("5d", 432_000),
        ("2w", 1_209_600),
    ],
)
def test_parse_duration_spellings(value: str | int, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "soon", "0", "0s", "-5m", "1m 30", "5y", True, 0, -1])
def test_a_bad_duration_is_refused_with_the_spellings(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)  # type: ignore[arg-type]


def test_an_absurd_duration_is_refused_without_quoting_all_of_it() -> None:
    absurd = "9" * 60 + "d"
    with pytest.raises(ValueError, match="longer than any time") as caught:
        parse_duration(absurd)
    assert absurd not in str(caught.value) and len(str(caught.value)) < 120


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("2h", NOW - timedelta(hours=2)),
        ("1d12h", NOW - timedelta(hours=36)),
        ("2026-11-30T00:00:00Z", datetime(2026, 11, 30, tzinfo=UTC)),
        ("2026-11-30T02:00:00+02:00", datetime(2026, 11, 30, tzinfo=UTC)),
        ("2026-11-30T00:00:00", datetime(2026, 11, 30, tzinfo=UTC)),
    ],
)
def test_parse_moment(text: str, expected: datetime) -> None:
    assert parse_moment(text, now=NOW) == expected


@pytest.mark.parametrize("age", ["1000000d", "99999999999999999999s"])
def test_an_age_reaching_before_the_year_1_is_a_clear_error(age: str) -> None:
    with pytest.raises(ValueError, match="before the year 1|longer than any time"):
        parse_moment(age, now=NOW)


def test_neither_a_time_nor_an_age() -> None:
    with pytest.raises(ValueError, match="neither an ISO 8601 time nor an age"):
        parse_moment("yesterday", now=NOW)


def test_a_huge_number_of_seconds_is_refused_not_overflowed() -> None:
    with pytest.raises(ValueError, match="longer than any time"):
        parse_duration(10**400)


def test_a_number_too_long_to_print_is_described_not_printed() -> None:
    with pytest.raises(ValueError, match="a number of about 5,000 digits is longer"):
        parse_duration(10**5000)
