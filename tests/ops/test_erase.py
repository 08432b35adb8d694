"""The :class:`~dispatcher.ops.erase.Erase` door, on SQLite and PostgreSQL: its plan finds and
counts without writing, its run erases what the plan found, and carrying it out writes one audit
row naming who asked (and through which front end); a look without erasing is audited too."""

from __future__ import annotations

import pytest

from dispatcher import dispatch, store
from dispatcher.ops.door import Actor, Plan
from dispatcher.ops.erase import Erase
from dispatcher.store import audit
from dispatcher.vocabulary import AuditAction
from tests.ops.test_phi_lifecycle import ENDPOINT, MESSAGE, finished, message, snapshot

MISSING = "00000000-0000-4000-8000-000000000404"


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(database_url=database_url, endpoints=[ENDPOINT])


def test_the_plan_finds_and_counts_a_patients_deliveries_and_writes_nothing(runtime) -> None:
    engine = runtime.engine
    first, second, pending = (dispatch("message_created", message("PAT-7", f"ENC-{n}"))[0] for n in range(3))
    finished(engine, first)
    finished(engine, second)
    before = snapshot(engine)

    plan = Erase(patient_id="PAT-7").plan(runtime)

    assert snapshot(engine) == before
    assert (plan.action, plan.count) == (AuditAction.LOG_ERASE, 2)
    assert plan.description == "3 deliveries found; 2 deliveries to erase"
    assert plan.selection == {"patient_key": runtime.keyring.index("PAT-7")}
    assert plan.details == {"pending": 1, "already_erased": 0, "not_found": 0}
    assert "PAT-7" not in repr(plan.selection)


def test_carrying_out_erases_what_the_plan_found_and_writes_one_audit_row(runtime) -> None:
    engine = runtime.engine
    done = dispatch("message_created", message())[0]
    finished(engine, done, "failed")
    door = Erase([done, MISSING])

    report = door.carry_out(runtime, Actor.console("grace"), door.plan(runtime))

    assert (report.erased, report.attempts_erased, report.not_found) == (1, 1, [MISSING])
    assert store.get_delivery(engine, done)["payload"] is None
    (entry,) = audit.entries(engine)
    assert (entry.actor, entry.action) == ("grace", "log erase")
    assert entry.selection == {"request_ids": [done, MISSING], "via": "console"}
    assert entry.counts == {
        "matched": 1,
        "erased": 1,
        "attempts_erased": 1,
        "already_erased": 0,
        "pending": 0,
        "not_found": 1,
    }


def test_a_preview_erases_nothing_and_is_audited_as_a_dry_run(runtime) -> None:
    engine = runtime.engine
    done = dispatch("message_created", message())[0]
    finished(engine, done)
    door = Erase([done])

    report = door.preview(runtime, Actor.cli(), door.plan(runtime))

    assert report.dry_run and report.to_erase.items == [done] and report.erased == 0
    assert MESSAGE in store.get_delivery(engine, done)["payload"]
    (entry,) = audit.entries(engine)
    assert entry.selection == {"request_ids": [done], "dry_run": True}
    assert entry.actor == Actor.cli().name


def test_an_erase_takes_request_ids_or_a_patient() -> None:
    with pytest.raises(ValueError, match="^request_ids or patient_id: "):
        Erase()
    with pytest.raises(ValueError, match="^request_ids or patient_id: "):
        Erase(["a"], patient_id="PAT-1")
    with pytest.raises(ValueError, match="^encounter_id: needs patient_id"):
        Erase(["a"], encounter_id="ENC-1")


def test_an_erase_runs_only_its_own_plan(runtime) -> None:
    other = Plan(AuditAction.LOG_ERASE, 1, "one delivery", {"request_ids": [MISSING]})
    with pytest.raises(TypeError, match="ErasePlan"):
        Erase([MISSING]).run(runtime, other)
    assert audit.entries(runtime.engine) == []


def test_a_patients_erased_deliveries_are_no_longer_found_by_their_business_ids(
    make_runtime, database_url: str
) -> None:
    from tests.intake.test_dispatch_search import SEARCH_KEY, found

    runtime = make_runtime(database_url=database_url, endpoints=[ENDPOINT], search_key=SEARCH_KEY)
    done, pending = (dispatch("message_created", message("PAT-8", "ENC-8"))[0] for _ in range(2))
    (other,) = dispatch("message_created", message("PAT-9", "ENC-8"))
    finished(runtime.engine, done)
    door = Erase(patient_id="PAT-8")

    assert door.carry_out(runtime, Actor.cli(), door.plan(runtime)).erased == 1

    assert found(runtime, "PAT-8") == {pending}  # one still to be sent keeps what it will send
    assert found(runtime, "ENC-8") == {pending, other}
