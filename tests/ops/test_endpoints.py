"""The endpoint doors (:mod:`dispatcher.ops.endpoints`) against the real Redis, on SQLite and
PostgreSQL: a plan reads only (the state, the held-back count, the audit selection); carrying one
out writes the change and one audit row naming the actor, with ``via`` for the console."""

from __future__ import annotations

import pytest

from dispatcher import dispatch, store
from dispatcher.contract import catalogue as events
from dispatcher.errors import UnknownEndpoint
from dispatcher.ops import audit
from dispatcher.ops.door import Actor
from dispatcher.ops.endpoints import Disable, Enable
from dispatcher.vocabulary import AuditAction, DeliveryStatus

ORDER = events.CATALOGUE["order_changed"].example()
ENDPOINTS = [{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "key-a-123"}]


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(database_url=database_url, endpoints=ENDPOINTS)


def held_back(runtime, n: int) -> list[str]:
    """``n`` deliveries dispatched while partner-a is disabled (stored failed, not sent)."""
    store.set_endpoint_disabled(runtime.engine, "partner-a", True, "maintenance")
    runtime.disabled.invalidate()
    return [dispatch("order_changed", ORDER)[0] for _ in range(n)]


def test_the_disable_plan_reads_only(runtime) -> None:
    plan = Disable("partner-a", "maintenance").plan(runtime)
    assert (plan.action, plan.count) == (AuditAction.ENDPOINTS_DISABLE, None)
    assert plan.selection == {"endpoint": "partner-a", "reason": "maintenance"}
    assert "recorded failed (endpoint_disabled)" in plan.description
    assert store.disabled_endpoints(runtime.engine) == {} and audit.entries(runtime.engine) == []


def test_disabling_writes_one_audit_row_with_the_actor_and_via(runtime) -> None:
    done = Disable("partner-a", "maintenance").carry_out(runtime, Actor.console("olivia"))
    again = Disable("partner-a", "again").carry_out(runtime, Actor.cli())
    assert (done.changed, again.changed) == (True, False)
    assert store.disabled_endpoints(runtime.engine) == {"partner-a": "maintenance"}
    first, second = audit.entries(runtime.engine)
    assert (first.actor, first.action, first.counts) == ("olivia", "endpoints disable", {"changed": 1})
    assert first.selection == {"endpoint": "partner-a", "reason": "maintenance", "via": "console"}
    assert (second.actor, second.selection, second.counts) == (
        audit.os_actor(),
        {"endpoint": "partner-a", "reason": "again"},
        {"changed": 0},
    )


def test_the_enable_plan_counts_what_was_held_back_and_writes_nothing(runtime, redis_client) -> None:
    held = held_back(runtime, 2)
    plan = Enable("partner-a", resend=True).plan(runtime)
    assert (plan.action, plan.count, plan.details) == (AuditAction.ENDPOINTS_ENABLE, 2, {"held_back": 2})
    assert plan.selection == {"endpoint": "partner-a", "resend": True}
    assert plan.description == "Send to it again. 2 deliveries were held back while it was disabled."
    assert Enable("partner-a").plan(runtime).selection == {"endpoint": "partner-a"}
    assert store.disabled_endpoints(runtime.engine) == {"partner-a": "maintenance"}
    assert audit.entries(runtime.engine) == []
    assert all(store.get_delivery(runtime.engine, r)["status"] == DeliveryStatus.FAILED for r in held)
    assert redis_client.exists(*(f"rq:job:{r}" for r in held)) == 0


def test_enabling_with_resend_requeues_what_was_held_back_and_audits_once(runtime, redis_client) -> None:
    held = held_back(runtime, 2)
    advanced: list[int] = []
    done = Enable("partner-a", resend=True).carry_out(runtime, Actor.cli(), progress=advanced.append)
    assert (done.changed, done.held_back, done.requeued, done.resent) == (True, 2, 2, True)
    assert sum(advanced) == 2
    assert all(store.get_delivery(runtime.engine, r)["status"] == DeliveryStatus.QUEUED for r in held)
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.action) == (audit.os_actor(), "endpoints enable")
    assert entry.selection == {"endpoint": "partner-a", "resend": True}
    assert entry.counts == {"changed": 1, "held_back": 2, "requeued": 2}


def test_enabling_without_resend_leaves_the_held_back_failed(runtime) -> None:
    held = held_back(runtime, 1)
    done = Enable("partner-a").carry_out(runtime, Actor.console("olivia"))
    assert (done.changed, done.held_back, done.requeued, done.resent) == (True, 1, 0, False)
    assert store.get_delivery(runtime.engine, held[0])["status"] == DeliveryStatus.FAILED
    [entry] = audit.entries(runtime.engine)
    assert entry.selection == {"endpoint": "partner-a", "via": "console"}
    assert entry.counts == {"changed": 1, "held_back": 1, "requeued": 0}


def test_an_unknown_endpoint_is_refused_by_the_plan_before_any_write(runtime) -> None:
    for door in (Disable("nope"), Enable("nope", resend=True)):
        with pytest.raises(UnknownEndpoint, match="unknown endpoint 'nope'"):
            door.carry_out(runtime, Actor.cli())
    assert audit.entries(runtime.engine) == []


def test_each_endpoint_s_breaker_is_shown_in_words(make_runtime, redis_client) -> None:
    from dispatcher.config import BreakerSettings
    from dispatcher.ops.endpoints import UNKNOWN_BREAKER, breaker_words, endpoint_rows
    from dispatcher.policy.breaker import Sample
    from dispatcher.sending import breaker

    runtime = make_runtime(
        endpoints=[
            {"name": "down", "url": "http://127.0.0.1:9/down"},
            {"name": "fine", "url": "http://127.0.0.1:9/fine"},
            {"name": "unguarded", "url": "http://127.0.0.1:9/u", "breaker": False},
        ]
    )
    redis_client.delete(breaker.state_key("down"), breaker.window_key("down"))
    settings = BreakerSettings(min_attempts=2)
    for _ in range(2):
        breaker.record(runtime.redis, "down", settings, Sample.FAILED)
    words = {row["name"]: row["breaker"] for row in endpoint_rows(runtime)}
    assert words["down"].startswith("open until ") and words["down"].endswith("Z")
    assert (words["fine"], words["unguarded"]) == ("closed", "off")
    runtime.__dict__["redis"] = type(runtime.redis).from_url("redis://127.0.0.1:1/0")  # nothing listens
    assert breaker_words(runtime, runtime.settings.endpoints[:1]) == {"down": UNKNOWN_BREAKER}
    redis_client.delete(breaker.state_key("down"), breaker.window_key("down"))
