""":mod:`dispatcher.ops.database`, the functions behind ``dispatcher db`` (no click), on SQLite and
PostgreSQL: where the database stands, an upgrade a step at a time, and the patient keys an
upgrade indexes for deliveries written without them. The command itself is tested in
tests/cli/test_db.py."""

from __future__ import annotations

from dispatcher import dispatch, store
from dispatcher.ops import database
from dispatcher.store import erasure, versioning
from tests.ops.test_phi_lifecycle import ENDPOINT, message


def test_status_and_an_upgrade_a_step_at_a_time(make_runtime, database_url: str) -> None:
    engine = make_runtime(database_url=database_url).engine  # made at head on first use
    assert database.status(engine)["state"] == "current"
    versioning.downgrade(engine, "0002")
    behind = database.status(engine)
    assert (behind["revision"], behind["state"], behind["head"]) == ("0002", "behind", versioning.HEAD)

    steps: list[str] = []
    step = database.upgrade(engine, "0003", on_step=steps.append)
    assert (step.before, step.after, step.applied, step.stamped) == ("0002", "0003", ["0003"], None)
    assert steps == ["0003"]
    assert database.unindexed(engine, step) == 0  # not at head yet: nothing to index

    rest = database.upgrade(engine)
    assert rest.as_dict() == {
        "before": "0003",
        "after": versioning.HEAD,
        "stamped": None,
        "applied": list(versioning.REVISIONS[3:]),
        "indexed": 0,
        "unindexed": [],
    }
    assert database.status(engine)["state"] == "current"


def test_an_upgrade_indexes_the_deliveries_written_without_patient_keys(make_runtime, database_url) -> None:
    runtime = make_runtime(database_url=database_url, endpoints=[ENDPOINT])
    engine = runtime.engine
    (request_id,) = dispatch("message_created", message("PAT-1"))
    with engine.begin() as conn:  # as a version before 0003 wrote it
        conn.execute(store.DELIVERIES.update().values(patient_key=None, encounter_key=None))
    assert erasure.patient_deliveries(engine, runtime.keyring.candidates("PAT-1")) == []

    report = database.upgrade(engine)
    assert report.applied == [] and database.unindexed(engine, report) == 1
    database.index(engine, runtime.keyring, report)

    assert (report.indexed, report.unindexed) == (1, [])
    assert database.unindexed(engine, report) == 0
    found = erasure.patient_deliveries(engine, runtime.keyring.candidates("PAT-1"))
    assert [d.request_id for d in found] == [request_id]
