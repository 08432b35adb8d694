"""The audit trail for operators (dispatcher.ops.audit), against the real SQLite and PostgreSQL:
who is acting (the OS user, a uid when the system has no name for it), a row written under
that name or the one given, and a selection described by its set fields only."""

from __future__ import annotations

import getpass
import os
from datetime import timedelta

import pytest

from dispatcher import store
from dispatcher.ops import audit
from dispatcher.times import utcnow
from dispatcher.vocabulary import AuditAction, DeliveryStatus


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(database_url=database_url)


def test_the_actor_is_the_os_user_or_its_uid(monkeypatch) -> None:
    assert audit.os_actor() == getpass.getuser()

    def no_name() -> str:
        raise KeyError("getpwuid(): uid not found")

    monkeypatch.setattr(getpass, "getuser", no_name)
    assert audit.os_actor() == f"uid {os.getuid()}"


def test_a_row_is_written_under_the_os_user_unless_an_actor_is_given(runtime) -> None:
    audit.record(runtime.engine, AuditAction.PRUNE, {"older_than": "30d"}, {"deleted": 2})
    audit.record(runtime.engine, AuditAction.DELIVERY_REVEAL, {"request_id": "r-1"}, {}, actor="ada")
    first, second = audit.entries(runtime.engine)
    assert (first.actor, first.action, first.selection, first.counts) == (
        audit.os_actor(),
        "prune",
        {"older_than": "30d"},
        {"deleted": 2},
    )
    assert (second.actor, second.action) == ("ada", "delivery reveal")
    assert [e.actor for e in audit.entries(runtime.engine, limit=1)] == ["ada"]
    assert audit.entries(runtime.engine, since=utcnow() + timedelta(minutes=1)) == []


def test_every_audited_action_is_listed_by_its_stored_word() -> None:
    assert audit.ACTIONS == (
        "retry",
        "replay",
        "prune",
        "retention run",
        "log erase",
        "log export",
        "endpoints disable",
        "endpoints enable",
        "storage encrypt",
        "storage rotate",
        "delivery reveal",
        "endpoints add",
        "endpoints edit",
        "endpoints pause",
        "endpoints resume",
        "endpoints rotate-key",
        "endpoints rotate-secret",
        "endpoints remove",
        "endpoints import",
        "alerts test",
        "api tokens create",
        "api tokens revoke",
    )  # the words old rows hold: a renamed member must not change them


def test_a_selection_is_described_by_its_set_fields_and_more() -> None:
    selection = store.Selection(event="order_changed", statuses=(DeliveryStatus.FAILED,))
    assert audit.described(selection) == {"event": "order_changed", "statuses": ("failed",)}
    assert audit.described(store.Selection(), dry_run=False, max_attempts=3, note="") == {"max_attempts": 3}
    assert audit.described(store.Selection(), endpoint="partner-a") == {"endpoint": "partner-a"}
