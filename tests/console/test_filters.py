"""The deliveries page's filters (``dispatcher/console/filters.py``): the patient and search
tokens, the keyset cursor, and the filters read from a query string. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatcher.console import filters

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


def test_a_search_token_carries_the_business_key_only_and_is_read_into_the_selection():
    token = filters.search_token(P1, SECRET)
    assert P1 not in token
    assert filters.open_search_token(token, SECRET, 3600, datetime.now(UTC)) == P1
    assert filters.open_search_token(token, SECRET, 3600, datetime.now(UTC) + timedelta(hours=2)) is None
    assert filters.open_search_token("nonsense", SECRET, 3600, datetime.now(UTC)) is None
    not_a_key = filters._seal({"b": "ORDER123"}, SECRET)  # only a keyed hash is a business key
    assert filters.open_search_token(not_a_key, SECRET, 3600, datetime.now(UTC)) is None

    chosen = filters.read_filters(
        {"find": token, "event": "order_changed"}, [], SECRET, 60, datetime.now(UTC)
    )
    assert chosen.business_key == P1 and chosen.active and not chosen.problems
    assert chosen.selection().business_key == P1
    assert "find=" in chosen.query() and "find=" not in chosen.query(find="")
    assert chosen.tokens() == {"find": token}
    stale = filters.read_filters({"find": "nonsense"}, [], SECRET, 60, NOW)
    assert stale.business_key is None and stale.problems == [
        "the business id search has expired: search again"
    ]
