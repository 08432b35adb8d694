"""Idempotent dispatch in the log (dispatcher.store.idempotency), on both backends: the first
dispatch with a key records it, a repeat gets the first one's request ids, another dispatch under
the key is refused by name, a key past its TTL is free again, the unique key decides a race, and
expired keys are counted and deleted a batch at a time."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dispatcher import store
from dispatcher.errors import IdempotencyConflict
from dispatcher.store import idempotency
from dispatcher.store.sealing import Keyring, new_key
from tests.store.rows import T0, new_delivery

TTL = 3600.0
KEYRING = Keyring(())


def key_for(given: str, data: str = "data-1", event: str = "order_changed", keyring=KEYRING):
    return idempotency.IdempotencyKey(
        given=given,
        hashes=tuple(keyring.candidates(f"idempotency:{given}")),
        fingerprints=tuple(keyring.candidates(data)),
        event=event,
    )


def claim(engine, key, request_ids: list[str], now=T0) -> dict[str, list[str]]:
    with engine.begin() as conn:
        return idempotency.claim(conn, [key], [request_ids], now, TTL)


def keys_stored(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(store.IDEMPOTENCY)).scalar_one()


def test_a_repeat_gets_the_first_dispatchs_request_ids(engine) -> None:
    assert claim(engine, key_for("k1"), ["id-1", "id-2"]) == {}
    assert claim(engine, key_for("k1"), ["id-3"], T0 + timedelta(minutes=5)) == {"k1": ["id-1", "id-2"]}
    assert idempotency.repeated(engine, key_for("k1"), T0 + timedelta(minutes=5), TTL) == ["id-1", "id-2"]
    assert idempotency.repeated(engine, key_for("k2"), T0, TTL) is None
    with engine.connect() as conn:
        (stored,) = conn.execute(sa.select(store.IDEMPOTENCY.c.key_hash)).scalars()
    assert "k1" not in stored  # the key is stored as a keyed hash, never as given


@pytest.mark.parametrize("other", [{"data": "data-2"}, {"event": "message_created"}], ids=["data", "event"])
def test_the_key_used_for_another_dispatch_is_refused_by_name(engine, other: dict) -> None:
    claim(engine, key_for("k1"), ["id-1"])
    with pytest.raises(IdempotencyConflict, match=r"^idempotency_key 'k1' was already used"):
        claim(engine, key_for("k1", **other), ["id-2"])
    with pytest.raises(IdempotencyConflict, match="'k1'"):
        idempotency.repeated(engine, key_for("k1", **other), T0, TTL)
    assert keys_stored(engine) == 1


def test_a_key_past_its_ttl_is_free_again(engine) -> None:
    claim(engine, key_for("k1"), ["id-1"])
    later = T0 + timedelta(seconds=TTL + 1)
    assert idempotency.repeated(engine, key_for("k1"), later, TTL) is None
    assert claim(engine, key_for("k1", data="data-2"), ["id-2"], later) == {}  # another dispatch, no conflict
    with pytest.raises(IdempotencyConflict):  # the key is the new dispatch's now
        idempotency.repeated(engine, key_for("k1"), later, TTL)
    assert idempotency.repeated(engine, key_for("k1", data="data-2"), later, TTL) == ["id-2"]


def test_a_key_recorded_under_an_older_storage_key_is_found(engine) -> None:
    old_key = new_key()
    claim(engine, key_for("k1", keyring=Keyring([old_key])), ["id-1"])
    rotated = Keyring([new_key(), old_key])
    assert idempotency.repeated(engine, key_for("k1", keyring=rotated), T0, TTL) == ["id-1"]
    assert claim(engine, key_for("k1", keyring=rotated), ["id-2"]) == {"k1": ["id-1"]}
    assert idempotency.repeated(engine, key_for("k1", keyring=Keyring([new_key()])), T0, TTL) is None


def test_the_unique_key_decides_a_race(engine) -> None:
    first = engine.connect()
    transaction = first.begin()
    assert idempotency.claim(first, [key_for("race")], [["id-1"]], T0, TTL) == {}
    seen: dict[str, list[str]] = {}
    second = threading.Thread(target=lambda: seen.update(claim(engine, key_for("race"), ["id-2"])))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waits for the first transaction to end
    transaction.commit()
    first.close()
    second.join(30)
    assert seen == {"race": ["id-1"]} and keys_stored(engine) == 1


def test_a_dispatch_with_a_repeated_key_stores_no_delivery(engine) -> None:
    first, again = new_delivery(), new_delivery()
    keyed = [store.NewDelivery(**{**row.__dict__, "idempotency": key_for("k1")}) for row in (first, again)]
    assert store.insert_deliveries(engine, [keyed[0]], now=T0).repeated == {}
    stored = store.insert_deliveries(engine, [keyed[1]], now=T0 + timedelta(minutes=1))
    assert stored.rows == [] and stored.repeated == {"k1": [first.request_id]}
    assert store.existing_deliveries(engine, [first.request_id, again.request_id]) == {first.request_id}


def test_expired_keys_are_counted_and_deleted_a_batch_at_a_time(engine) -> None:
    for n in range(5):
        claim(engine, key_for(f"old-{n}"), [f"id-{n}"], T0 - timedelta(hours=2))
    claim(engine, key_for("young"), ["id-young"], T0)
    cutoff = T0 - timedelta(hours=1)
    assert idempotency.count_expired(engine, cutoff) == 5
    assert (
        idempotency.delete_expired(engine, cutoff, batch=2, stop=lambda: True) == 2
    )  # stopped after a batch
    assert idempotency.count_expired(engine, cutoff) == 3
    assert idempotency.delete_expired(engine, cutoff, batch=2) == 3
    assert idempotency.count_expired(engine, cutoff) == 0 and keys_stored(engine) == 1
    assert idempotency.repeated(engine, key_for("young"), T0, TTL) == ["id-young"]
