"""The endpoints in the database (``dispatcher/store/endpoint_catalog.py``), on both backends:
the file's endpoints imported once whoever is first, each change raising the generation, a name
taken once, replace_all matching a file exactly, the mapping sealed with the storage keys, and
migration 0011's tables and columns made and dropped."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dispatcher import store
from dispatcher.store import endpoint_catalog as catalog
from dispatcher.store import versioning
from dispatcher.store.sealing import Keyring, new_key

A = {"name": "pharmacy", "url": "https://pharmacy.example/hook", "key": "key-of-pharmacy-1"}
B = {"name": "lab", "url": "https://lab.example/hook"}


def test_before_an_import_there_is_no_catalog_and_the_first_import_wins(engine: Engine) -> None:
    assert catalog.generation(engine) is None
    assert catalog.import_first(engine, [A, B]) is True
    assert catalog.import_first(engine, [B]) is False  # a second start imports nothing
    generation, stored = catalog.catalog(engine)
    assert generation == 1
    assert [(s.name, s.position, dict(s.definition)) for s in stored] == [("pharmacy", 0, A), ("lab", 1, B)]


def test_two_first_starts_at_once_import_once(pg_url: str) -> None:
    """PostgreSQL: the second start waits on the catalog row's key the first holds, then loses."""
    first, second = store.create_store_engine(pg_url), store.create_store_engine(pg_url)
    holding = first.connect()
    held = holding.begin()
    now = datetime.now(UTC)
    holding.execute(
        store.schema.ENDPOINT_CATALOG.insert().values(id=1, generation=1, imported_at=now, changed_at=now)
    )
    outcome: list[bool] = []
    racer = threading.Thread(target=lambda: outcome.append(catalog.import_first(second, [B])))
    racer.start()  # it reads no catalog row (uncommitted), then waits on the key the first holds
    racer.join(timeout=1)
    assert racer.is_alive()
    holding.execute(store.schema.ENDPOINTS.insert().values(
        name="pharmacy", position=0, definition='{"name": "pharmacy", "url": "https://p.example/"}',
        created_at=now, updated_at=now,
    ))  # fmt: skip
    held.commit()
    racer.join(timeout=10)
    assert outcome == [False]
    assert [s.name for s in catalog.catalog(second)[1]] == ["pharmacy"]
    holding.close()
    first.dispose()
    second.dispose()


def test_every_change_raises_the_generation(engine: Engine) -> None:
    catalog.import_first(engine, [A])
    assert catalog.add(engine, B) == 2
    assert catalog.update(engine, "lab", {**B, "url": "https://lab2.example/"}) == 3
    assert catalog.update(engine, "nobody", B) is None
    assert catalog.remove(engine, "pharmacy") == 4
    assert catalog.remove(engine, "pharmacy") is None
    assert catalog.generation(engine) == 4
    stored = catalog.stored(engine, "lab")
    assert stored is not None and stored.definition["url"] == "https://lab2.example/" and stored.position == 1


def test_a_name_is_taken_once(engine: Engine) -> None:
    catalog.add(engine, A)  # the first change makes the catalog too
    with pytest.raises(catalog.EndpointExists, match="name: an endpoint named 'pharmacy' exists"):
        catalog.add(engine, {**A, "url": "https://other.example/"})
    assert catalog.catalog(engine) == (1, catalog.catalog(engine)[1])
    assert catalog.stored(engine, "pharmacy").definition == A  # type: ignore[union-attr]


def test_retiring_secrets_are_kept_until_their_grace_ends(engine: Engine) -> None:
    catalog.import_first(engine, [A])
    now = datetime.now(UTC)
    soon, past = now + timedelta(hours=1), now - timedelta(seconds=1)
    catalog.update(
        engine, "pharmacy", A, [catalog.Retiring("whsec_old", soon), catalog.Retiring("whsec_older", past)]
    )
    stored = catalog.stored(engine, "pharmacy")
    assert stored is not None and stored.retiring_at(now) == ["whsec_old"]
    catalog.update(engine, "pharmacy", A)  # retiring not given: kept
    assert catalog.stored(engine, "pharmacy").retiring_at(now) == ["whsec_old"]  # type: ignore[union-attr]


def test_replace_all_makes_the_stored_endpoints_the_file_s(engine: Engine) -> None:
    catalog.import_first(engine, [A, B])
    created = catalog.stored(engine, "lab").created_at  # type: ignore[union-attr]
    third = {"name": "imaging", "url": "https://imaging.example/"}
    assert catalog.replace_all(engine, [B, third]) == 2
    _, stored = catalog.catalog(engine)
    assert [s.name for s in stored] == ["lab", "imaging"]
    assert stored[0].created_at == created


def test_the_mapping_is_sealed_when_storage_keys_are_set(database_url: str) -> None:
    engine = store.create_store_engine(database_url, Keyring([new_key()]))
    catalog.import_first(engine, [A])
    with engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT definition FROM webhook_endpoints").scalar()
    assert "key-of-pharmacy-1" not in raw and "pharmacy.example" not in raw
    assert catalog.stored(engine, "pharmacy").definition == A  # type: ignore[union-attr]
    engine.dispose()


def test_migration_0011_adds_the_tables_and_columns_and_a_downgrade_drops_them(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    assert versioning.downgrade(engine, "0010") == ["0012", "0011"]
    tables = set(sa.inspect(engine).get_table_names())
    assert (
        not {"webhook_endpoints", "webhook_endpoint_catalog", "webhook_alerts", "webhook_alert_sends"}
        & tables
    )
    assert "paused" not in {c["name"] for c in sa.inspect(engine).get_columns("webhook_endpoint_state")}
    assert versioning.upgrade(engine) == ["0011", "0012"]
    assert "paused" in {c["name"] for c in sa.inspect(engine).get_columns("webhook_endpoint_state")}
    assert catalog.generation(engine) is None  # created empty: the next start imports the file's
    engine.dispose()
