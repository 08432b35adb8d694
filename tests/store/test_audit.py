"""The audit trail (dispatcher.store.audit), on both backends: rows read back oldest first, from
a moment, the newest ``limit``, or a page at a time newest first by keyset; the actor kept to its
column, the selection and counts as JSON."""

from __future__ import annotations

from datetime import timedelta

from dispatcher import store
from dispatcher.store import audit
from dispatcher.times import utcnow
from dispatcher.vocabulary import AuditAction
from tests.store.rows import T0


def test_the_audit_trail_reads_back_in_order(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    audit.record(engine, "ada", AuditAction.PRUNE, {"older_than": "30d"}, {"deleted": 3}, at=T0)
    audit.record(
        engine,
        "grace",
        AuditAction.LOG_ERASE,
        {"patient_key": "ab12"},
        {"erased": 2},
        at=T0 + timedelta(hours=1),
    )
    entries = audit.entries(engine)
    assert [(e.actor, e.action, e.selection, e.counts) for e in entries] == [
        ("ada", "prune", {"older_than": "30d"}, {"deleted": 3}),
        ("grace", "log erase", {"patient_key": "ab12"}, {"erased": 2}),
    ]
    assert [e.actor for e in audit.entries(engine, since=T0 + timedelta(minutes=1))] == ["grace"]
    assert [e.actor for e in audit.entries(engine, limit=1)] == ["grace"]
    engine.dispose()


def test_a_row_keeps_the_actor_to_255_characters_and_writes_any_value_as_json(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    before = utcnow()
    audit.record(engine, "a" * 300, AuditAction.RETRY, {"since": T0, "statuses": ("failed",)}, {"retried": 1})
    (entry,) = audit.entries(engine)
    assert entry.actor == "a" * 255
    assert entry.selection == {"since": str(T0), "statuses": ["failed"]}
    assert before <= entry.at <= utcnow() and entry.at.utcoffset() == timedelta(0)
    assert entry.as_dict() == {
        "id": entry.id,
        "at": entry.at,
        "actor": "a" * 255,
        "action": "retry",
        "selection": {"since": str(T0), "statuses": ["failed"]},
        "counts": {"retried": 1},
    }
    engine.dispose()


def test_pages_run_newest_first_by_keyset_until_the_oldest(database_url: str) -> None:
    engine = store.create_store_engine(database_url)
    for n in range(7):
        audit.record(engine, f"actor-{n}", AuditAction.RETRY, {"n": n}, {"requeued": n}, at=T0)
    seen, before, pages = [], None, 0
    while True:
        page, before = audit.newest_first(engine, before, limit=3)
        seen += [e.actor for e in page]
        pages += 1
        if before is None:
            break
        assert before == page[-1].id
    assert seen == [f"actor-{n}" for n in reversed(range(7))] and pages == 3
    assert audit.newest_first(engine, limit=7)[1] is None  # a page that holds the rest has no next
    newest = audit.newest_first(engine, limit=1)[0][0]
    assert (newest.selection, newest.counts) == ({"n": 6}, {"requeued": 6})
    assert audit.newest_first(engine, before=1) == ([], None)
    engine.dispose()
