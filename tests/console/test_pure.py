"""The console's pure parts: the patient token, the keyset cursor, the chart and health word."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatcher.console import chart, filters

SECRET = "a-console-secret-of-enough-length-0001"
NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


P1, P2, E1 = ("a1" * 32), ("b2" * 32), ("c3" * 32)
"""Keyed hashes look like these (64 hex characters): long enough that a random token never holds
one by chance, as it may hold a short string such as 'p1'."""


def test_a_patient_token_opens_with_its_secret_within_its_lifetime_only():
    token = filters.patient_token([P1, P2], [E1], SECRET)
    assert P1 not in token and P2 not in token and E1 not in token
    opened = filters.open_patient_token(token, SECRET, 3600, datetime.now(UTC))
    assert opened == ((P1, P2), (E1,))
    assert (
        filters.open_patient_token(token, "another-secret-of-enough-length-002", 3600, datetime.now(UTC))
        is None
    )
    assert filters.open_patient_token(token, SECRET, 3600, datetime.now(UTC) + timedelta(hours=2)) is None
    assert filters.open_patient_token(token[:-4] + "AAAA", SECRET, 3600, datetime.now(UTC)) is None


def test_the_cursor_round_trips_and_nonsense_is_no_cursor():
    cursor = (NOW, "00000000-0000-4000-8000-000000000001")
    assert filters.read_cursor(filters.write_cursor(cursor)) == cursor
    for text in ("", "nonsense", "2026-02-01T12:00:00+00:00~", f"{NOW.isoformat()}~{'x' * 40}"):
        assert filters.read_cursor(text) is None


def test_read_filters_keeps_good_values_and_names_bad_ones():
    chosen = filters.read_filters(
        {"status": "failed", "endpoint": "nowhere", "since": "2h", "until": "3h"}, ["lab"], SECRET, 60, NOW
    )
    assert chosen.values["status"] == "failed" and chosen.values["endpoint"] == ""
    assert chosen.since == NOW - timedelta(hours=2) and chosen.until == NOW - timedelta(hours=3)
    assert chosen.problems == ["endpoint: no such endpoint 'nowhere'", "since must be before until"]
    assert chosen.selection().statuses == ("failed",)
    assert chosen.selection(statuses=("retrying",)).statuses == ("retrying",)


def test_the_day_and_its_chart():
    day = chart.endpoint_day([(0, 10, 5), (23, 4, 4), (24, 99, 99), (-1, 99, 99)])
    assert day.attempts[0] == 10 and day.attempts[23] == 4 and day.total == 14
    assert day.success_rate == 9 / 14
    svg = str(chart.svg(day))
    assert svg.count('class="bad"') == 24 and "24 h ago: 10 attempts, 5 delivered" in svg
    assert f'height="{chart.HEIGHT - 4}"' in svg  # the busiest hour fills the chart
    assert chart.health(True, day) == "disabled"
    assert chart.health(False, chart.endpoint_day([])) == "idle"
    assert chart.health(False, chart.endpoint_day([(1, 10, 4)])) == "failing"
    assert chart.health(False, chart.endpoint_day([(1, 100, 94)])) == "degraded"
    assert chart.health(False, chart.endpoint_day([(1, 100, 95)])) == "healthy"


def test_a_stored_session_holds_while_young_and_its_user_unchanged():
    from dataclasses import replace

    from dispatcher.config.console_settings import Concealed, ConsoleSettings, ConsoleUser
    from dispatcher.console.sessions import fingerprint, valid

    ann = ConsoleUser("ann", Concealed("$argon2id$v=19$m=1,t=1,p=1$salt$hash"), "operator")
    console = ConsoleSettings(users=(ann,), session_hours=2)
    record = {
        b"user": b"ann",
        b"role": b"operator",
        b"since": b"1000.0",
        b"csrf": b"t" * 43,
        b"password": fingerprint(ann.password_hash.reveal()).encode(),
    }
    assert ann.password_hash.reveal() not in record[b"password"].decode()
    assert valid(record, console, 1000 + 7199)
    assert not valid(record, console, 1000 + 7200)  # session_hours ran out
    assert not valid(record, ConsoleSettings(users=(), session_hours=2), 1001)  # removed
    assert not valid(record, replace(console, users=(replace(ann, role="viewer"),)), 1001)
    new_hash = replace(ann, password_hash=Concealed("$argon2id$v=19$m=1,t=1,p=1$salt$other"))
    assert not valid(record, replace(console, users=(new_hash,)), 1001)
    assert not valid({**record, b"since": b"soon"}, console, 1001)
