"""The HTTP API's tokens in the database (dispatcher.store.api_tokens), on SQLite and PostgreSQL:
stored by name with the hash of the token, never the token; a name is taken once, the insert
deciding between two made at once; revoking deletes the row; times are UTC on both backends;
migration 0012 makes the table and a downgrade drops it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dispatcher import store
from dispatcher.errors import DispatcherError
from dispatcher.store import api_tokens, versioning
from dispatcher.store.api_tokens import ApiToken, ApiTokenExists
from dispatcher.store.schema import API_TOKENS

NOW = datetime(2026, 12, 14, 9, 30, 15, 250000, tzinfo=UTC)
HASH_A = "a" * 64
HASH_B = "b" * 64


def test_a_token_is_stored_by_name_with_its_hash_and_scopes(engine) -> None:
    made = api_tokens.create(engine, "ehr-bridge", HASH_A, ("send", "read"), NOW)
    assert made == ApiToken("ehr-bridge", ("send", "read"), NOW, None)
    with engine.connect() as conn:
        row = conn.execute(sa.select(API_TOKENS)).mappings().one()
    assert dict(row) == {
        "name": "ehr-bridge",
        "token_hash": HASH_A,
        "scopes": "send,read",
        "created_at": NOW,
        "last_used_at": None,
    }
    assert row["created_at"].tzinfo is not None
    assert api_tokens.named(engine, "ehr-bridge") == made
    assert api_tokens.named(engine, "nobody") is None


def test_they_are_listed_by_name_and_found_by_hash(engine) -> None:
    api_tokens.create(engine, "zeta", HASH_A, ("read",), NOW)
    api_tokens.create(
        engine, "alpha", HASH_B, ("send", "operate", "read:payload"), NOW + timedelta(seconds=1)
    )
    assert [t.name for t in api_tokens.listed(engine)] == ["alpha", "zeta"]
    found = api_tokens.by_hash(engine)
    assert set(found) == {HASH_A, HASH_B}
    assert found[HASH_A].name == "zeta" and found[HASH_B].scopes == ("send", "operate", "read:payload")


def test_a_name_is_taken_once(engine) -> None:
    api_tokens.create(engine, "ehr-bridge", HASH_A, ("send",), NOW)
    with pytest.raises(ApiTokenExists) as caught:
        api_tokens.create(engine, "ehr-bridge", HASH_B, ("read",), NOW)
    assert isinstance(caught.value, DispatcherError)
    assert str(caught.value) == (
        "an API token named 'ehr-bridge' exists already: revoke it first or choose another name"
    )
    assert api_tokens.by_hash(engine) == {HASH_A: ApiToken("ehr-bridge", ("send",), NOW, None)}


def test_of_two_processes_making_one_name_the_insert_keeps_the_first(database_url: str) -> None:
    """Each checked the name was free before either wrote; the second's insert meets the first's
    committed row and is refused, leaving the first's token."""
    first, second = store.create_store_engine(database_url), store.create_store_engine(database_url)
    assert api_tokens.named(first, "ci") is None and api_tokens.named(second, "ci") is None
    api_tokens.create(first, "ci", HASH_A, ("send",), NOW)
    with pytest.raises(ApiTokenExists):
        api_tokens.create(second, "ci", HASH_B, ("operate",), NOW)
    assert list(api_tokens.by_hash(second)) == [HASH_A]
    first.dispose()
    second.dispose()


def test_the_same_hash_twice_is_not_taken_for_a_name_in_use(engine) -> None:
    api_tokens.create(engine, "one", HASH_A, ("send",), NOW)
    with pytest.raises(sa.exc.IntegrityError):
        api_tokens.create(engine, "two", HASH_A, ("send",), NOW)
    assert [t.name for t in api_tokens.listed(engine)] == ["one"]


def test_revoking_deletes_the_row(engine) -> None:
    api_tokens.create(engine, "ehr-bridge", HASH_A, ("send",), NOW)
    assert api_tokens.revoke(engine, "ehr-bridge") is True
    assert api_tokens.revoke(engine, "ehr-bridge") is False
    assert api_tokens.listed(engine) == [] and api_tokens.by_hash(engine) == {}
    api_tokens.create(engine, "ehr-bridge", HASH_B, ("read",), NOW)  # the name is free again
    assert list(api_tokens.by_hash(engine)) == [HASH_B]


def test_touch_sets_last_used_of_the_names_given(engine) -> None:
    api_tokens.create(engine, "a", HASH_A, ("send",), NOW)
    api_tokens.create(engine, "b", HASH_B, ("send",), NOW)
    later = NOW + timedelta(minutes=5)
    assert api_tokens.touch(engine, ["a", "a", "gone"], later) == 1
    assert api_tokens.touch(engine, [], later) == 0
    used = {t.name: t.last_used_at for t in api_tokens.listed(engine)}
    assert used == {"a": later, "b": None}
    assert used["a"] is not None and used["a"].utcoffset() == timedelta(0)


def test_migration_0012_adds_the_table_and_a_downgrade_drops_it(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    api_tokens.create(engine, "ehr-bridge", HASH_A, ("send",), NOW)
    assert versioning.downgrade(engine, "0011") == ["0012"]
    assert "webhook_api_tokens" not in sa.inspect(engine).get_table_names()
    assert versioning.upgrade(engine) == ["0012"]
    inspector = sa.inspect(engine)
    assert {c["name"] for c in inspector.get_columns("webhook_api_tokens")} == {
        "name",
        "token_hash",
        "scopes",
        "created_at",
        "last_used_at",
    }
    assert api_tokens.listed(engine) == []  # the downgrade revoked every token
    api_tokens.create(engine, "ehr-bridge", HASH_A, ("send",), NOW)
    with pytest.raises(sa.exc.IntegrityError):  # the hash is unique after the upgrade too
        api_tokens.create(engine, "other", HASH_A, ("send",), NOW)
    engine.dispose()
