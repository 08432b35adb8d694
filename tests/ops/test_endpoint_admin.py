"""The doors that change the endpoints themselves (:mod:`dispatcher.ops.endpoint_admin`) against
the real Redis, on SQLite and PostgreSQL: a plan writes no change and no audit row (a fresh
install's file endpoints are imported first); a bad setting, an unknown event or a name in use
is one error naming it, with nothing written; each write is taken by this process at once and
by another within its next look; pausing holds deliveries with no attempt used and resuming
sends them on in dispatch order; removing is refused while deliveries are pending unless
forced, which fails them and keeps their rows; every audit row names settings, never values."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dispatcher import dispatch, queue, store
from dispatcher.contract import catalogue as events
from dispatcher.errors import ConfigError, UnknownEndpoint
from dispatcher.ops import audit
from dispatcher.ops.door import Actor
from dispatcher.ops.endpoint_admin import (
    Add,
    Edit,
    EndpointBusy,
    EndpointExists,
    Pause,
    Remove,
    Resume,
    endpoint_view,
)
from dispatcher.ops.endpoints import canonical, differing, edited, endpoint_rows
from dispatcher.runtime import Runtime
from dispatcher.store import endpoint_catalog
from dispatcher.store import endpoints as endpoint_states
from dispatcher.times import utcnow
from dispatcher.vocabulary import AuditAction, DeliveryStatus
from tests.worker.test_flight import deliver

ORDER = events.CATALOGUE["order_changed"].example()
KEY_A = "key-a-never-in-the-audit"
ENDPOINTS = [{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": KEY_A, "events": ["order_changed"]}]
TOKEN = "bearer-token-never-in-the-audit"


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(database_url=database_url, endpoints=ENDPOINTS)


def audit_text(runtime: Runtime) -> str:
    """Every audit row, every column, as text."""
    with runtime.engine.connect() as conn:
        return " ".join(str(value) for row in conn.execute(sa.select(store.AUDIT)).all() for value in row)


def test_a_plan_imports_a_fresh_installs_endpoints_and_writes_no_change_or_audit(runtime) -> None:
    assert endpoint_catalog.generation(runtime.engine) is None
    plan = Add({"name": "partner-b", "url": "http://127.0.0.1:9/b", "max_attempts": 3}).plan(runtime)
    assert (plan.action, plan.count) == (AuditAction.ENDPOINTS_ADD, None)
    assert plan.selection == {"endpoint": "partner-b", "settings": ["url", "max_attempts"]}
    assert "Add endpoint partner-b at http://127.0.0.1:9/b for every event" in plan.description
    _, rows = endpoint_catalog.catalog(runtime.engine)
    assert [row.name for row in rows] == ["partner-a"]  # the file's, imported; nothing added
    assert audit.entries(runtime.engine) == []


def test_adding_stores_it_audits_names_only_and_every_process_takes_it(
    runtime, make_runtime, database_url
) -> None:
    definition = {"name": "partner-b", "url": "http://127.0.0.1:9/b", "auth": {"bearer": TOKEN}}
    done = Add(definition).carry_out(runtime, Actor.console("olivia"))
    assert done.name == "partner-b"
    assert runtime.settings.require_endpoint("partner-b").url == "http://127.0.0.1:9/b"  # at once, here
    other = make_runtime(database_url=database_url, endpoints=ENDPOINTS)  # another process
    other.refresh_endpoints(force=True)
    assert [e.name for e in other.settings.endpoints] == ["partner-a", "partner-b"]
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.action, entry.counts) == ("olivia", "endpoints add", {"added": 1})
    assert entry.selection == {"endpoint": "partner-b", "settings": ["url", "auth"], "via": "console"}
    assert TOKEN not in audit_text(runtime)


@pytest.mark.parametrize(
    ("definition", "error"),
    [
        (
            {"name": "partner-b", "url": "ftp://127.0.0.1/b"},
            "config: url: must be an http:// or https:// URL",
        ),
        (
            {"name": "partner-b", "url": "http://h/b", "events": ["order_changed", "nope"]},
            "events[1]: unknown event 'nope'",
        ),
        (
            {"name": "partner-b", "url": "http://h/b", "max_attempts": 0},
            "max_attempts: must be greater than 0, got 0",
        ),
        ({"name": "partner-a", "url": "http://h/b"}, "name: an endpoint named 'partner-a' exists"),
    ],
)
def test_a_bad_setting_or_a_name_in_use_is_one_error_and_changes_nothing(runtime, definition, error) -> None:
    runtime.adopt_file_endpoints()
    before = endpoint_catalog.catalog(runtime.engine)
    with pytest.raises((ConfigError, EndpointExists)) as raised:
        Add(definition).carry_out(runtime, Actor.cli())
    assert error in str(raised.value) and "\n" not in str(raised.value)
    assert endpoint_catalog.catalog(runtime.engine) == before
    assert audit.entries(runtime.engine) == []


def test_editing_changes_the_settings_named_keeps_the_rest_and_audits_their_names(runtime) -> None:
    Add(
        {"name": "partner-b", "url": "http://127.0.0.1:9/b", "auth": {"bearer": TOKEN}, "timeout": 5}
    ).carry_out(runtime, Actor.cli())
    door = Edit(
        "partner-b", {"url": "http://127.0.0.1:9/new", "disable_after.failed_deliveries": 10}, ("auth",)
    )
    plan = door.plan(runtime)
    assert plan.details == {"settings": ("url", "disable_after", "auth")}
    assert endpoint_catalog.stored(runtime.engine, "partner-b").definition["url"] == "http://127.0.0.1:9/b"

    done = door.carry_out(runtime, Actor.cli(), plan)

    assert done.settings == ("url", "disable_after", "auth")
    endpoint = runtime.settings.require_endpoint("partner-b")
    assert (endpoint.url, endpoint.auth, endpoint.disable_after.failed_deliveries) == (
        "http://127.0.0.1:9/new",
        None,
        10,
    )
    assert endpoint.delivery.timeout == 5  # kept
    same = Edit("partner-b", {"url": "http://127.0.0.1:9/new"})
    assert same.nothing_to_do(same.plan(runtime))
    entries = audit.entries(runtime.engine)
    assert entries[-1].selection == {"endpoint": "partner-b", "settings": ["url", "disable_after", "auth"]}
    assert entries[-1].counts == {"changed": 3} and TOKEN not in audit_text(runtime)


@pytest.mark.parametrize(
    ("changes", "unset", "error"),
    [
        ({"name": "other"}, (), "name: cannot be changed"),
        ({}, ("proxy",), "proxy: is not set on this endpoint"),
        ({"timeout": -1}, (), "timeout: must be greater than 0"),
        ({}, ("url",), "url: is required"),
    ],
)
def test_a_bad_edit_is_one_error_and_changes_nothing(runtime, changes, unset, error) -> None:
    runtime.adopt_file_endpoints()
    before = endpoint_catalog.catalog(runtime.engine)
    with pytest.raises(ConfigError, match=error.replace("(", r"\(")):
        Edit("partner-a", changes, unset).carry_out(runtime, Actor.cli())
    assert endpoint_catalog.catalog(runtime.engine) == before and audit.entries(runtime.engine) == []


def test_an_unknown_endpoint_is_refused_by_every_plan(runtime) -> None:
    doors = [Edit("nope", {"timeout": 3}), Pause("nope"), Resume("nope"), Remove("nope", force=True)]
    for door in doors:
        with pytest.raises(UnknownEndpoint, match="unknown endpoint 'nope'; configured: partner-a"):
            door.plan(runtime)
    with pytest.raises(UnknownEndpoint):
        endpoint_view(runtime, "nope")
    assert audit.entries(runtime.engine) == []


def paused_by_a_worker(runtime: Runtime, n: int) -> list[str]:
    """``n`` deliveries dispatched to paused partner-a, each given back by the worker's pause
    gate (no attempt) and its job scheduled for later, as RQ does with the job's retry."""
    ids = [dispatch("order_changed", ORDER)[0] for _ in range(n)]
    for request_id in ids:
        result = deliver(request_id)
        assert result is not None and result.intervals[0] > 60  # looks again much later
        queue.remove_job(runtime.queue, request_id)
        queue.ensure_queued(runtime.queue, request_id, at=utcnow() + timedelta(seconds=result.intervals[0]))
    return ids


def test_pausing_holds_deliveries_with_no_attempt_and_resuming_sends_them_in_dispatch_order(runtime) -> None:
    paused = Pause("partner-a").carry_out(runtime, Actor.cli())
    assert paused.changed and not Pause("partner-a").carry_out(runtime, Actor.cli()).changed
    ids = paused_by_a_worker(runtime, 3)
    for request_id in ids:
        delivery = store.get_delivery(runtime.engine, request_id)
        assert (delivery["status"], delivery["attempts"]) == (DeliveryStatus.QUEUED, 0)
        assert store.list_attempts(runtime.engine, request_id) == []
    assert runtime.queue.job_ids == []
    assert endpoint_rows(runtime)[0]["paused"] is True
    assert Pause("partner-a").plan(runtime).count == 3

    plan = Resume("partner-a").plan(runtime)
    assert plan.count == 3
    done = Resume("partner-a").carry_out(runtime, Actor.console("olivia"), plan)

    assert (done.changed, done.woken) == (True, 3)
    assert runtime.queue.job_ids == ids  # in dispatch order
    assert endpoint_rows(runtime)[0]["paused"] is False
    entries = audit.entries(runtime.engine)
    assert [e.action for e in entries] == ["endpoints pause", "endpoints pause", "endpoints resume"]
    assert entries[-1].counts == {"changed": 1, "woken": 3}
    assert entries[-1].selection == {"endpoint": "partner-a", "via": "console"}


def test_removing_is_refused_while_deliveries_are_pending_unless_forced(runtime) -> None:
    ids = [dispatch("order_changed", ORDER)[0] for _ in range(2)]
    before = store.status_counts(runtime.engine)
    plan = Remove("partner-a").plan(runtime)
    assert plan.count == 2
    with pytest.raises(
        EndpointBusy, match=r"endpoint partner-a has 2 pending deliveries.*--force"
    ) as refused:
        Remove("partner-a").carry_out(runtime, Actor.cli(), plan)
    assert "\n" not in str(refused.value)
    assert (
        endpoint_catalog.stored(runtime.engine, "partner-a") is not None
        and audit.entries(runtime.engine) == []
    )

    endpoint_states.set_endpoint_paused(runtime.engine, "partner-a", True)
    done = Remove("partner-a", force=True).carry_out(runtime, Actor.cli())

    assert (done.name, done.failed) == ("partner-a", 2)
    assert endpoint_catalog.stored(runtime.engine, "partner-a") is None
    assert runtime.settings.endpoint("partner-a") is None
    for request_id in ids:  # the log rows stay
        delivery = store.get_delivery(runtime.engine, request_id)
        assert (delivery["status"], delivery["reason"]) == (DeliveryStatus.FAILED, "endpoint_removed")
    after = store.status_counts(runtime.engine)
    assert after["failed"] == before["failed"] + 2 and after["queued"] == before["queued"] - 2
    assert store.endpoint_states(runtime.engine) == {}  # a new partner-a starts running
    [entry] = audit.entries(runtime.engine)
    assert (entry.action, entry.selection, entry.counts) == (
        "endpoints remove",
        {"endpoint": "partner-a", "force": True},
        {"removed": 1, "failed": 2},
    )


def test_removing_an_idle_endpoint_needs_no_force(runtime) -> None:
    done = Remove("partner-a").carry_out(runtime, Actor.cli())
    assert (done.name, done.failed) == ("partner-a", 0)
    assert endpoint_catalog.catalog(runtime.engine)[1] == []


def test_the_view_masks_every_secret_and_says_the_state(runtime) -> None:
    Add(
        {
            "name": "partner-b",
            "url": "http://127.0.0.1:9/b",
            "key": KEY_A,
            "auth": {"bearer": TOKEN},
            "max_attempts": 2,
        }
    ).carry_out(runtime, Actor.cli())
    Pause("partner-b").carry_out(runtime, Actor.cli())
    view = endpoint_view(runtime, "partner-b")
    assert KEY_A not in str(view) and TOKEN not in str(view)
    assert view["settings"]["key"] == "****" and view["settings"]["auth"] == {"bearer": "****"}
    assert view["settings"]["max_attempts"] == 2 and view["settings"]["url"] == "http://127.0.0.1:9/b"
    assert (view["paused"], view["disabled"], view["pending"], view["breaker"]) == (True, False, 0, "closed")
    assert view["retiring_signing_secrets"] == [] and view["created_at"] is not None


def test_edited_sets_and_unsets_dotted_paths_and_differing_names_each_change() -> None:
    before = {"name": "a", "url": "u", "auth": {"oauth2": {"scope": "x", "client_id": "c"}}}
    after = edited(before, {"auth.oauth2.scope": "y", "headers.X-A": "1"}, ("url",))
    assert after == {
        "name": "a",
        "auth": {"oauth2": {"scope": "y", "client_id": "c"}},
        "headers": {"X-A": "1"},
    }
    assert before["auth"]["oauth2"]["scope"] == "x"  # a copy
    assert differing(before, after) == ("auth", "headers", "url")
    assert edited(before, {"name": "a"}, ()) == before


def test_two_spellings_of_one_endpoint_are_the_same_endpoint(runtime) -> None:
    written = {"name": "b", "url": "http://h/b", "disable_after": {"failed_deliveries": 3, "window": "1d"}}
    spelled = {"name": "b", "url": "http://h/b", "disable_after": {"failed_deliveries": 3, "window": 86400}}
    assert canonical(written, runtime.settings) == canonical(spelled, runtime.settings)
    assert canonical({**spelled, "timeout": 7}, runtime.settings) != canonical(spelled, runtime.settings)
