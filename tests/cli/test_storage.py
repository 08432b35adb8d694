"""``dispatcher storage encrypt|rotate`` in-process (click's runner) against the real Redis, on
SQLite and PostgreSQL: sealing the rows already stored, rotating to a new key, and refusing to
run with no storage keys."""

from __future__ import annotations

import json

from dispatcher import dispatch, store
from dispatcher.store import audit, erasure, resealing
from dispatcher.store.sealing import PREFIX, Keyring, check_key, new_key
from tests.cli.helpers import invoke
from tests.ops.test_phi_lifecycle import ENDPOINT, MESSAGE, finished, message


def test_storage_encrypt_then_rotate_through_the_cli(make_runtime, database_url: str) -> None:
    plain = make_runtime(database_url=database_url, endpoints=[ENDPOINT])
    ids = [dispatch("message_created", message(f"PAT-{n}"))[0] for n in range(3)]
    for request_id in ids:
        finished(plain.engine, request_id)
    plain.close()

    first = invoke("keys", "generate", "--storage").stdout.strip()
    assert len(check_key(first)) == 32
    sealed = make_runtime(database_url=database_url, endpoints=[ENDPOINT], storage_keys=[first])
    report = json.loads(invoke("storage", "encrypt", "--json").stdout)
    assert sum(report["sealed"].values()) == 9 and report["unreadable"] == []
    assert all(v.startswith(f"{PREFIX}{Keyring([first]).key_ids[0]}:") for v in raw_phi(sealed.engine))
    assert "nothing to do" in invoke("storage", "encrypt").stdout
    sealed.close()

    second = new_key()
    rotating = make_runtime(database_url=database_url, endpoints=[ENDPOINT], storage_keys=[second, first])
    assert (
        json.loads(invoke("storage", "rotate", "--dry-run", "--json").stdout)["to_do"][
            "webhook_deliveries.payload"
        ]
        == 3
    )
    rotated = invoke("storage", "rotate")
    assert rotated.exit_code == 0 and "sealed 9 values under storage key" in rotated.stdout
    assert [e.action for e in audit.entries(rotating.engine)] == ["storage encrypt", "storage rotate"]
    rotating.close()

    only_new = make_runtime(database_url=database_url, endpoints=[ENDPOINT], storage_keys=[second])
    assert MESSAGE in store.get_delivery(only_new.engine, ids[0])["payload"]
    assert [
        d.request_id
        for d in erasure.patient_deliveries(only_new.engine, only_new.keyring.candidates("PAT-1"))
    ] == [ids[1]]


def raw_phi(engine) -> list[str]:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return [
            v
            for table, column, _ in resealing.COLUMNS
            for (v,) in conn.execute(sa.select(sa.type_coerce(table.c[column], sa.String())))
            if v is not None
        ]


def test_storage_commands_need_keys(runtime) -> None:
    result = invoke("storage", "encrypt")
    assert result.exit_code == 2
    assert "no storage_keys are configured" in result.stderr
