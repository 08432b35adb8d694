"""The HTTP API's tokens through their doors (dispatcher.ops.api_tokens) against the real Redis,
on SQLite and PostgreSQL: a token is the prefix and 256 random bits, stored only as its hash;
a bad name or scope, a name in use or an unknown one is one error with nothing written; each
create and revoke is audited by name and scopes, never the token, and raises the generation in
Redis (a Redis that does not answer is said in the process log, and the write stands)."""

from __future__ import annotations

import hashlib
import logging
import re

import pytest
import sqlalchemy as sa

from dispatcher import store
from dispatcher.errors import DispatcherError
from dispatcher.logs import process_logger
from dispatcher.ops import api_tokens, audit
from dispatcher.ops.api_tokens import (
    GENERATION_KEY,
    SCOPES,
    ApiTokenExists,
    CreateToken,
    InvalidApiToken,
    RevokeToken,
    UnknownApiToken,
)
from dispatcher.ops.door import Actor
from dispatcher.runtime import Runtime
from dispatcher.vocabulary import AuditAction


@pytest.fixture
def runtime(make_runtime, database_url: str) -> Runtime:
    return make_runtime(database_url=database_url)


def audit_text(runtime: Runtime) -> str:
    """Every audit row, every column, as text."""
    with runtime.engine.connect() as conn:
        return " ".join(str(value) for row in conn.execute(sa.select(store.AUDIT)).all() for value in row)


def test_a_token_is_the_prefix_and_256_random_bits_and_its_hash_is_sha256() -> None:
    token, other = api_tokens.new_token(), api_tokens.new_token()
    assert token.startswith("dsp_") and token != other
    assert re.fullmatch(r"dsp_[A-Za-z0-9_-]{43}", token)  # 32 bytes, URL-safe base64, no padding
    assert api_tokens.token_hash(token) == hashlib.sha256(token.encode()).hexdigest()


def test_scopes_are_read_in_one_order_each_once() -> None:
    assert SCOPES == ("send", "read", "operate", "read:payload")
    assert api_tokens.parse_scopes("read, send,read") == ("send", "read")
    assert api_tokens.parse_scopes("read:payload,operate,read,send") == SCOPES


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("send,admin", "unknown scope 'admin'; the scopes are send, read, operate, read:payload"),
        ("", "no scope given; name one or more of send, read, operate, read:payload, comma-separated"),
        (" , ", "no scope given; name one or more of send, read, operate, read:payload, comma-separated"),
        (
            "send,read:payload",
            "scope read:payload widens read, which it needs too: give --scopes read,read:payload",
        ),
    ],
)
def test_a_bad_scope_is_one_line_naming_it(text: str, message: str) -> None:
    with pytest.raises(InvalidApiToken) as caught:
        api_tokens.parse_scopes(text)
    assert str(caught.value) == message and isinstance(caught.value, DispatcherError)


@pytest.mark.parametrize("name", ["", "x" * 65, "has space", "semi;colon", "é", "new\nline"])
def test_a_bad_name_is_refused_with_nothing_written(runtime, name: str) -> None:
    with pytest.raises(InvalidApiToken, match="use 1 to 64 letters, digits, '.', '_' or '-'"):
        CreateToken(name, ("send",)).plan(runtime)
    assert api_tokens.token_list(runtime) == []
    assert api_tokens.check_name("ehr.bridge_2-" + "x" * 51) == "ehr.bridge_2-" + "x" * 51


def test_creating_stores_the_hash_audits_without_the_token_and_raises_the_generation(
    runtime, redis_client
) -> None:
    door = CreateToken("ehr-bridge", ("read", "send"))
    plan = door.plan(runtime)
    assert (plan.action, plan.count) == (AuditAction.API_TOKENS_CREATE, None)
    assert plan.selection == {"name": "ehr-bridge", "scopes": ["send", "read"]}
    assert audit.entries(runtime.engine) == [] and api_tokens.token_list(runtime) == []  # a plan reads only

    done = door.carry_out(runtime, Actor.console("olivia"), plan)
    assert (done.name, done.scopes) == ("ehr-bridge", ("send", "read"))
    assert done.token not in repr(done) and done.token not in str(done.counts())
    found = api_tokens.active_tokens(runtime)[api_tokens.token_hash(done.token)]
    assert (found.name, found.scopes, found.last_used_at) == ("ehr-bridge", ("send", "read"), None)
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.action, entry.counts) == ("olivia", "api tokens create", {"created": 1})
    assert entry.selection == {"name": "ehr-bridge", "scopes": ["send", "read"], "via": "console"}
    assert done.token not in audit_text(runtime)
    assert done.token[4:] not in audit_text(runtime) and api_tokens.token_hash(done.token) not in audit_text(
        runtime
    )
    assert int(redis_client.get(GENERATION_KEY)) == 1 == api_tokens.generation(runtime)


def test_scopes_may_be_given_as_one_text(runtime) -> None:
    done = CreateToken("ci", "operate, send").carry_out(runtime, Actor.cli())
    assert done.scopes == ("send", "operate")


def test_a_name_in_use_is_refused_by_the_plan_and_by_a_run_that_lost_the_race(runtime) -> None:
    first, second = CreateToken("ci", ("send",)), CreateToken("ci", ("operate",))
    first_plan, second_plan = first.plan(runtime), second.plan(runtime)  # both see the name free
    kept = first.carry_out(runtime, Actor.cli(), first_plan)
    with pytest.raises(ApiTokenExists, match="an API token named 'ci' exists already: revoke it first"):
        second.carry_out(runtime, Actor.cli(), second_plan)
    with pytest.raises(ApiTokenExists):
        second.plan(runtime)
    assert list(api_tokens.active_tokens(runtime)) == [api_tokens.token_hash(kept.token)]
    assert [e.action for e in audit.entries(runtime.engine)] == ["api tokens create"]  # one row


def test_revoking_deletes_it_audits_and_raises_the_generation(runtime, redis_client) -> None:
    made = CreateToken("ehr-bridge", ("send",)).carry_out(runtime, Actor.cli())
    door = RevokeToken("ehr-bridge")
    plan = door.plan(runtime)
    assert (plan.action, plan.selection) == (AuditAction.API_TOKENS_REVOKE, {"name": "ehr-bridge"})
    done = door.carry_out(runtime, Actor("api-admin", "api"), plan)
    assert (done.name, done.revoked, done.counts()) == ("ehr-bridge", True, {"revoked": 1})
    assert api_tokens.active_tokens(runtime) == {} and api_tokens.token_list(runtime) == []
    entry = audit.entries(runtime.engine)[-1]
    assert (entry.actor, entry.action, entry.selection) == (
        "api-admin",
        "api tokens revoke",
        {"name": "ehr-bridge", "via": "api"},
    )
    assert made.token not in audit_text(runtime)
    assert int(redis_client.get(GENERATION_KEY)) == 2
    again = door.run(runtime, plan)  # revoked meanwhile by someone else: nothing to delete
    assert again.counts() == {"revoked": 0}


def test_revoking_an_unknown_name_is_one_line_with_nothing_written(runtime, redis_client) -> None:
    with pytest.raises(UnknownApiToken) as caught:
        RevokeToken("nobody").plan(runtime)
    assert str(caught.value) == "no API token named 'nobody'; dispatcher api tokens list shows them"
    assert audit.entries(runtime.engine) == [] and redis_client.get(GENERATION_KEY) is None


def test_a_redis_that_does_not_answer_is_logged_once_and_the_token_stands(
    make_runtime, database_url, caplog
) -> None:
    runtime = make_runtime(database_url=database_url, redis_url="redis://127.0.0.1:1/0")
    logger = process_logger()
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            done = CreateToken("ci", ("send",)).carry_out(runtime, Actor.cli())
    finally:
        logger.removeHandler(caplog.handler)
    (line,) = [r.getMessage() for r in caplog.records if "API tokens changed" in r.getMessage()]
    assert "ConnectionError" in line and done.token not in caplog.text
    assert [t["name"] for t in api_tokens.token_list(runtime)] == ["ci"]


def test_the_list_and_touch(runtime) -> None:
    CreateToken("zeta", ("read",)).carry_out(runtime, Actor.cli())
    CreateToken("alpha", ("send", "read", "read:payload")).carry_out(runtime, Actor.cli())
    assert api_tokens.touch(runtime, ["zeta"]) == 1
    listed = api_tokens.token_list(runtime)
    assert [t["name"] for t in listed] == ["alpha", "zeta"]
    assert listed[0]["scopes"] == ["send", "read", "read:payload"] and listed[0]["last_used_at"] is None
    for when in (listed[0]["created_at"], listed[1]["created_at"], listed[1]["last_used_at"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", when)
    assert set(listed[0]) == {"name", "scopes", "created_at", "last_used_at"}  # no hash, no token
