"""Schema migrations on SQLite and the real PostgreSQL: a database made before migrations is
upgraded with every row kept, every migration goes down and up again, a new one is made at head,
and the models and the migrations agree (where a database stands, and what is refused, is
tests/store/test_versioning.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from dispatcher import store
from dispatcher.errors import SchemaOutdated
from dispatcher.store import erasure, versioning
from dispatcher.store.sealing import NO_PATIENT, Keyring

LEGACY = Path(__file__).parent / "legacy"
PATIENT = "PATIENT-LEGACY-7"


def load_legacy(url: str, counts_table: bool = True) -> None:
    """The database the last version before migrations made (tests/store/legacy/make_legacy.py)."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        raw.driver_connection.executescript((LEGACY / "sqlite.sql").read_text())
        raw.close()
    else:
        dump = (LEGACY / "postgresql.sql").read_text()
        script = "\n".join(line for line in dump.splitlines() if not line.startswith("\\"))
        with engine.begin() as conn:
            conn.exec_driver_sql(script)
            conn.exec_driver_sql("RESET search_path")  # the dump empties it
    if not counts_table:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE webhook_status_counts")
    engine.dispose()


def snapshot(engine: sa.engine.Engine) -> dict[str, list[tuple]]:
    """Every row of the tables the legacy version had, by their columns then."""
    added = ("payload_erased_at", "patient_key", "encounter_key", "ordering_key", "ordering_seq")
    delivery_columns = [c for c in store.DELIVERIES.c if c.name not in added]
    with engine.connect() as conn:
        return {
            "deliveries": sorted(conn.execute(sa.select(*delivery_columns)).all()),
            "attempts": sorted(
                conn.execute(sa.select(*[c for c in store.ATTEMPTS.c if c.name != "failure"])).all()
            ),
            "endpoints": sorted(
                conn.execute(
                    sa.select(*[c for c in store.ENDPOINT_STATE.c if c.name not in ("paused", "paused_at")])
                ).all()
            ),
        }


def model_differences(engine: sa.engine.Engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, store.METADATA)


def test_the_revisions_are_the_scripts_in_order() -> None:
    scripts = ScriptDirectory(versioning.scripts_dir())
    walked = [s.revision for s in scripts.walk_revisions("base", "heads")]
    assert tuple(reversed(walked)) == versioning.REVISIONS
    assert scripts.get_heads() == [versioning.HEAD]
    for path in (Path(versioning.scripts_dir()) / "versions").glob("0*.py"):
        assert re.match(r"(\d{4})_", path.name)[1] == scripts.get_revision(path.name[:4]).revision


@pytest.mark.parametrize("counts_table", [True, False], ids=["with-counts", "before-counts"])
def test_a_legacy_database_is_refused_then_upgraded_with_every_row(
    database_url: str, counts_table: bool
) -> None:
    load_legacy(database_url, counts_table)
    with pytest.raises(SchemaOutdated, match=r"made before migrations .* run: dispatcher db upgrade$"):
        store.create_store_engine(database_url)

    engine = store.create_store_engine(database_url, check_schema=False)
    before = snapshot(engine)
    assert {row.status for row in before["deliveries"]} == {
        "queued",
        "in_flight",
        "retrying",
        "delivered",
        "failed",
    }
    applied = versioning.upgrade(engine)
    assert applied == list(versioning.REVISIONS[2:] if counts_table else versioning.REVISIONS[1:])
    assert snapshot(engine) == before
    assert model_differences(engine) == []
    engine.dispose()

    engine = store.create_store_engine(database_url)  # at head: opens
    assert store.status_counts(engine) == {
        "queued": 1,
        "in_flight": 1,
        "retrying": 1,
        "delivered": 1,
        "failed": 3,
    }
    keyring = Keyring(())
    assert erasure.count_unindexed(engine) == 7
    assert erasure.index_missing(engine, keyring) == []
    assert erasure.count_unindexed(engine) == 0
    found = erasure.patient_deliveries(engine, keyring.candidates(PATIENT))
    assert sorted(d.event for d in found) == ["message_created"] * 4
    with engine.connect() as conn:
        keys = conn.execute(sa.select(store.DELIVERIES.c.event, store.DELIVERIES.c.patient_key)).all()
    assert {key for event, key in keys if event == "order_changed"} == {NO_PATIENT}
    queued = [row for row in before["deliveries"] if row.status == "queued"]
    claim = store.claim(engine, queued[0].request_id, "new-worker")
    assert claim is not None and json.loads(claim.payload)["event"] == "order_changed"
    engine.dispose()


def test_every_migration_goes_down_and_up_again_keeping_the_rows(database_url: str) -> None:
    load_legacy(database_url)
    engine = store.create_store_engine(database_url, check_schema=False)
    before = snapshot(engine)
    versioning.upgrade(engine)
    for target in reversed(versioning.REVISIONS[:-1]):
        assert versioning.downgrade(engine, target) == [
            versioning.REVISIONS[versioning.REVISIONS.index(target) + 1]
        ]
        assert versioning.current(engine).revision == target
    assert snapshot(engine) == before
    assert versioning.upgrade(engine) == list(versioning.REVISIONS[1:])
    assert snapshot(engine) == before and model_differences(engine) == []
    engine.dispose()


def test_an_erased_payload_survives_a_downgrade_as_empty_text(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    from tests.store.rows import T0, new_delivery

    row = new_delivery()
    store.insert_deliveries(engine, [row], now=T0)
    store.fail_delivery(engine, row.request_id, "test", now=T0)
    assert erasure.erase(engine, [row.request_id], T0).deliveries == 1
    versioning.downgrade(engine, "0002")
    with engine.connect() as conn:
        payload = conn.exec_driver_sql("SELECT payload FROM webhook_deliveries").scalar_one()
    assert payload == ""
    engine.dispose()


def test_a_new_database_is_made_at_head_and_agrees_with_the_migrations(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    assert versioning.current(engine).kind == "current"
    assert model_differences(engine) == []
    versioning.check(engine)
    engine.dispose()
