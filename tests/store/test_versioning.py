"""Where a database stands (dispatcher.store.versioning), on SQLite and the real PostgreSQL: an
empty one is made at head on first use (without loading Alembic), one behind or from a newer
version is refused by name and never changed, and an unknown target revision is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from dispatcher import store
from dispatcher.errors import SchemaOutdated, SchemaUnknown
from dispatcher.store import versioning
from tests.store.rows import new_delivery


def test_tables_are_created_on_first_use(database_url: str) -> None:
    plain = sa.create_engine(database_url)
    try:
        before = set(sa.inspect(plain).get_table_names())
        assert store.DELIVERIES.name not in before
        assert store.ATTEMPTS.name not in before

        engine = store.create_store_engine(database_url)
        try:
            after = set(sa.inspect(plain).get_table_names())
            assert {"webhook_deliveries", "webhook_event_transaction_log"} <= after
            # Usable at once, and a second engine on the same database does not trip over them.
            store.insert_deliveries(engine, [new_delivery("11111111-1111-4111-8111-111111111111")])
            again = store.create_store_engine(database_url)
            assert store.get_delivery(again, "11111111-1111-4111-8111-111111111111") is not None
            again.dispose()
        finally:
            engine.dispose()
    finally:
        plain.dispose()


def test_making_a_new_database_does_not_load_alembic(tmp_path: Path) -> None:
    code = (
        "import sys; from dispatcher import store; "
        f"store.create_store_engine('sqlite:///{tmp_path / 'fresh.db'}'); "
        "print('alembic' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_database_behind_is_refused_and_never_changed(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    versioning.downgrade(engine, "0003")
    engine.dispose()
    with pytest.raises(SchemaOutdated) as caught:
        store.create_store_engine(database_url)
    assert str(caught.value) == (
        f"the log database is at revision 0003 (behind; this version's newest is {versioning.HEAD}); "
        f"this version needs {versioning.HEAD}: run: dispatcher db upgrade"
    )
    engine = store.create_store_engine(database_url, check_schema=False)
    assert versioning.current(engine).revision == "0003"
    with pytest.raises(SchemaOutdated):
        versioning.check(engine)
    engine.dispose()


def test_a_database_from_a_newer_version_is_refused_by_name(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    with engine.begin() as conn:
        conn.execute(versioning.VERSION_TABLE.update().values(version_num="0099"))
    engine.dispose()
    with pytest.raises(SchemaUnknown, match=r"at revision 0099, which this version does not know"):
        store.create_store_engine(database_url)
    engine = store.create_store_engine(database_url, check_schema=False)
    with pytest.raises(SchemaUnknown):
        versioning.upgrade(engine)
    engine.dispose()


def test_an_unknown_target_revision_is_refused(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    for call in (lambda: versioning.upgrade(engine, "0042"), lambda: versioning.downgrade(engine, "banana")):
        with pytest.raises(
            ValueError, match=rf"unknown revision .*; expected one of: {', '.join(versioning.REVISIONS)}"
        ):
            call()
    assert versioning.current(engine).revision == versioning.HEAD
    engine.dispose()
