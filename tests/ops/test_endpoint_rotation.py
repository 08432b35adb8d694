"""Rotating an endpoint's credentials (:mod:`dispatcher.ops.endpoint_rotation`) against a real
receiver, the real Redis and SQLite/PostgreSQL, the deliveries flown by the worker's own code: a
rotated signing secret makes two ``v1,`` signatures (old and new, each verifiable) during its
grace and one (the new) after; a new key is sent at once; no secret reaches an audit row, a
count or the process log."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
import sqlalchemy as sa

from dispatcher import dispatch, store
from dispatcher.contract import catalogue as events
from dispatcher.contract.signing import decode_secret, generate_secret
from dispatcher.errors import ConfigError
from dispatcher.ops import audit
from dispatcher.ops.door import Actor
from dispatcher.ops.endpoint_rotation import RotateKey, RotateSecret, signing_secrets
from dispatcher.store import endpoint_catalog
from dispatcher.vocabulary import AuditAction
from tests.conftest import wait_for
from tests.worker.test_flight import deliver

ORDER = events.CATALOGUE["order_changed"].example()
OLD_SECRET = generate_secret()
OLD_KEY = "old-key-never-in-the-audit"
NEW_KEY = "new-key-never-in-the-audit"


@pytest.fixture
def runtime(make_runtime, database_url: str, receiver):
    endpoint = {"name": "partner-a", "url": receiver.url, "key": OLD_KEY, "signing_secret": OLD_SECRET}
    return make_runtime(database_url=database_url, endpoints=[endpoint])


def signatures(got) -> list[str]:
    return got.headers["webhook-signature"].split(" ")


def signed_by(got, secret: str) -> str:
    """The ``v1,`` signature ``secret`` makes of a received request (Standard Webhooks)."""
    signed = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.raw
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sent(receiver):
    """One event dispatched and flown by the worker's code; what the partner received."""
    (request_id,) = dispatch("order_changed", ORDER)
    assert deliver(request_id) is None
    return receiver.for_request(request_id)[-1]


def stored_text(runtime) -> str:
    """The audit table, every column, as text."""
    with runtime.engine.connect() as conn:
        return " ".join(str(v) for row in conn.execute(sa.select(store.AUDIT)).all() for v in row)


def test_during_the_grace_both_secrets_sign(runtime, receiver) -> None:
    assert signatures(sent(receiver)) == [signed_by(receiver.received[-1], OLD_SECRET)]
    plan = RotateSecret("partner-a", grace_seconds=3600).plan(runtime)
    assert "signs beside it until" in plan.description and "two v1 signatures" in plan.description

    done = RotateSecret("partner-a", grace_seconds=3600).carry_out(runtime, Actor.cli(), plan)

    assert done.secret.startswith("whsec_") and done.secret != OLD_SECRET and done.retiring_until is not None
    got = sent(receiver)
    assert signatures(got) == [signed_by(got, done.secret), signed_by(got, OLD_SECRET)]
    again = RotateSecret("partner-a", grace_seconds=600).carry_out(runtime, Actor.cli())
    got = sent(receiver)  # the first one's old secret keeps its own grace
    assert signatures(got) == [
        signed_by(got, again.secret),
        signed_by(got, OLD_SECRET),
        signed_by(got, done.secret),
    ]
    retiring = endpoint_catalog.stored(runtime.engine, "partner-a").retiring
    assert [r.until for r in retiring] == [done.retiring_until, again.retiring_until]
    text = stored_text(runtime)
    assert all(secret not in text for secret in (OLD_SECRET, done.secret, again.secret))
    assert all(again.secret not in str(v) for v in again.counts().values())
    assert again.secret not in Path(runtime.settings.process_log).read_text()
    assert again.secret not in repr(again)


def test_after_the_grace_only_the_new_secret_signs(runtime, receiver) -> None:
    done = RotateSecret("partner-a", grace_seconds=1).carry_out(runtime, Actor.cli())
    assert len(runtime.settings.require_endpoint("partner-a").signing_secrets) == 2
    wait_for(  # a process takes the endpoints again when a grace ends
        lambda: (
            runtime.refresh_endpoints()
            or len(runtime.settings.require_endpoint("partner-a").signing_secrets) == 1
        ),
        timeout=10,
        message="the grace to end",
    )
    got = sent(receiver)
    assert signatures(got) == [signed_by(got, done.secret)]


def test_a_rotation_without_grace_stops_the_old_secret_at_once(runtime, receiver) -> None:
    done = RotateSecret("partner-a", grace_seconds=0).carry_out(runtime, Actor.cli())
    assert done.retiring_until is None
    got = sent(receiver)
    assert signatures(got) == [signed_by(got, done.secret)]
    [entry] = audit.entries(runtime.engine)
    assert (entry.action, entry.selection, entry.counts) == (
        AuditAction.ENDPOINTS_ROTATE_SECRET,
        {"endpoint": "partner-a", "settings": ["signing_secret"], "grace_seconds": 0},
        {"rotated": 1, "retiring": 0},
    )
    with pytest.raises(ConfigError, match="grace: must be a whole number of seconds, 0 or more"):
        RotateSecret("partner-a", grace_seconds=-5).plan(runtime)


def test_a_new_key_is_sent_at_once_and_the_plan_says_the_grace_does_not_apply(runtime, receiver) -> None:
    plan = RotateKey("partner-a", NEW_KEY, grace_seconds=3600).plan(runtime)
    assert "sent at once" in plan.description
    assert any("carries one value" in note for note in plan.notes)
    assert any("does not apply" in note for note in plan.notes)
    assert NEW_KEY not in repr(RotateKey("partner-a", NEW_KEY))

    RotateKey("partner-a", NEW_KEY, grace_seconds=3600).carry_out(runtime, Actor.console("olivia"), plan)

    assert sent(receiver).headers["X-Webhook-Key"] == NEW_KEY
    [entry] = audit.entries(runtime.engine)
    assert entry.selection == {"endpoint": "partner-a", "settings": ["key"], "via": "console"}
    assert NEW_KEY not in stored_text(runtime) and OLD_KEY not in stored_text(runtime)


@pytest.mark.parametrize(
    ("key", "error"),
    [
        (OLD_KEY, "key: is the key in use now"),
        ("two\nlines", "key: must be a valid HTTP header value"),
    ],
)
def test_a_bad_key_is_one_error_and_changes_nothing(runtime, key, error) -> None:
    with pytest.raises(ConfigError, match=error):
        RotateKey("partner-a", key).carry_out(runtime, Actor.cli())
    assert endpoint_catalog.stored(runtime.engine, "partner-a").definition["key"] == OLD_KEY
    assert audit.entries(runtime.engine) == []


def test_signing_secrets_reads_one_a_list_or_none() -> None:
    assert signing_secrets({"signing_secret": "whsec_a"}) == ["whsec_a"]
    assert signing_secrets({"signing_secret": ["whsec_a", "whsec_b"]}) == ["whsec_a", "whsec_b"]
    assert signing_secrets({}) == []
