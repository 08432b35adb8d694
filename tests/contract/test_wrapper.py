"""The standard wrapper: built once at dispatch, rendered per attempt."""

from __future__ import annotations

import copy
import json

import pytest

from dispatcher.contract.wrapper import REDACTED, WEBHOOK_VERSION, build, dumps, render
from dispatcher.errors import InvalidEventData

REQUEST_ID = "6f1c2f5e-8d3a-4c1b-9a51-3b7e0d2c9f10"
KEY = "s3cr3t-K3y-9f8e7d"


def stored(**overrides: object) -> dict:
    values: dict = {
        "event": "order_changed",
        "timestamp": "2026-01-30T12:00:00Z",
        "data": {"order_number": "ORDER123", "status": "updated", "created_at": "2026-01-30T12:00:00Z"},
        "source": "Baremeds",
        "environment": "production",
        "request_id": REQUEST_ID,
        "dispatched_by": "SYSTEM",
    }
    values.update(overrides)
    return build(**values)


# --- build -----------------------------------------------------------------------------------


def test_build_keys_are_in_the_seed_order() -> None:
    body = stored()
    assert list(body) == ["event", "timestamp", "data", "metadata"]
    assert list(body["metadata"]) == [
        "source",
        "environment",
        "webhook_version",
        "request_id",
        "dispatched_by",
        "retry",
    ]


def test_build_values() -> None:
    data = {"order_number": "ORDER123", "status": "updated", "created_at": "2026-01-30T12:00:00Z"}
    body = build(
        event="order_changed",
        timestamp="2026-02-01T08:09:10Z",
        data=data,
        source="Acme",
        environment="staging",
        request_id=REQUEST_ID,
        dispatched_by="billing-service",
    )
    assert body == {
        "event": "order_changed",
        "timestamp": "2026-02-01T08:09:10Z",
        "data": data,
        "metadata": {
            "source": "Acme",
            "environment": "staging",
            "webhook_version": "v1.0",
            "request_id": REQUEST_ID,
            "dispatched_by": "billing-service",
            "retry": False,
        },
    }
    assert body["metadata"]["retry"] is False
    assert "webhook_key" not in body["metadata"]


def test_webhook_version_is_v1_0() -> None:
    assert WEBHOOK_VERSION == "v1.0"
    assert stored()["metadata"]["webhook_version"] == "v1.0"


def test_build_keeps_the_data_key_order() -> None:
    data = {"b": 1, "a": 2, "c": 3}
    assert list(stored(data=data)["data"]) == ["b", "a", "c"]


# --- render ----------------------------------------------------------------------------------


@pytest.mark.parametrize("retry", [False, True])
def test_render_sets_retry(retry: bool) -> None:
    wire, logged = render(stored(), retry=retry, webhook_key=None)
    assert json.loads(wire)["metadata"]["retry"] is retry
    assert json.loads(logged)["metadata"]["retry"] is retry


def test_render_without_key_leaves_webhook_key_out() -> None:
    body = stored()
    wire, logged = render(body, retry=False, webhook_key=None)
    sent = json.loads(wire)
    assert "webhook_key" not in sent["metadata"]
    assert logged == wire.decode("utf-8")
    assert sent == body  # nothing else changes on a first attempt


def test_render_with_key_adds_webhook_key_last() -> None:
    wire, _logged = render(stored(), retry=True, webhook_key=KEY)
    sent = json.loads(wire)
    assert list(sent) == ["event", "timestamp", "data", "metadata"]
    assert list(sent["metadata"]) == [
        "source",
        "environment",
        "webhook_version",
        "request_id",
        "dispatched_by",
        "retry",
        "webhook_key",
    ]
    assert sent["metadata"]["webhook_key"] == KEY
    assert sent["metadata"]["retry"] is True


def test_logged_text_redacts_the_key_and_never_contains_it() -> None:
    wire, logged = render(stored(), retry=False, webhook_key=KEY)
    assert KEY in wire.decode("utf-8")
    assert KEY not in logged
    assert json.loads(logged)["metadata"]["webhook_key"] == REDACTED
    assert REDACTED == "[redacted]"


def test_logged_text_is_the_wire_body_except_for_the_key() -> None:
    wire, logged = render(stored(), retry=True, webhook_key=KEY)
    sent, shown = json.loads(wire), json.loads(logged)
    assert list(shown["metadata"]) == list(sent["metadata"])
    sent["metadata"]["webhook_key"] = REDACTED
    assert shown == sent
    assert logged == dumps(sent)


def test_render_returns_bytes_and_str() -> None:
    wire, logged = render(stored(), retry=False, webhook_key=KEY)
    assert isinstance(wire, bytes)
    assert isinstance(logged, str)


def test_render_does_not_mutate_the_stored_body() -> None:
    body = stored()
    before = copy.deepcopy(body)
    render(body, retry=True, webhook_key=KEY)
    render(body, retry=True, webhook_key=None)
    assert body == before
    assert body["metadata"]["retry"] is False
    assert "webhook_key" not in body["metadata"]


def test_successive_renders_are_independent() -> None:
    body = stored()
    render(body, retry=True, webhook_key=KEY)
    wire, _logged = render(body, retry=False, webhook_key=None)
    metadata = json.loads(wire)["metadata"]
    assert metadata["retry"] is False
    assert "webhook_key" not in metadata


def test_render_wire_is_the_compact_utf8_serialization() -> None:
    body = stored(data={"message": "Grüße, señor — 日本"})
    wire, _logged = render(body, retry=False, webhook_key=None)
    assert wire == dumps(body).encode("utf-8")
    assert "Grüße, señor — 日本".encode() in wire


# --- dumps -----------------------------------------------------------------------------------


def test_dumps_is_compact() -> None:
    text = dumps({"a": 1, "b": [1, 2], "c": {"d": None, "e": True}})
    assert text == '{"a":1,"b":[1,2],"c":{"d":null,"e":true}}'


def test_dumps_keeps_non_ascii_text() -> None:
    text = dumps({"message": "café ☕ Ω"})
    assert text == '{"message":"café ☕ Ω"}'
    assert "\\u" not in text


def test_dumps_keeps_key_order_and_round_trips() -> None:
    body = stored(data={"z": "last-first", "a": "ümlaut"})
    text = dumps(body)
    assert json.loads(text) == body
    assert text.index('"event"') < text.index('"timestamp"') < text.index('"data"') < text.index('"metadata"')
    assert text.index('"z"') < text.index('"a"')


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_dumps_never_writes_nan_or_infinity(value: float) -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        dumps({"data": {"attachment": [{"score": value}]}})


def test_a_stored_body_holding_nan_is_never_rendered_for_sending() -> None:
    # An older version may have stored one (json.loads reads the bare NaN token back);
    # the worker fails such a delivery as an unusable payload instead of sending invalid JSON.
    body = json.loads(dumps(stored()).replace('"status":"updated"', '"status":NaN'))
    with pytest.raises(ValueError):
        render(body, retry=False, webhook_key=None)


@pytest.mark.parametrize("name", ["dispatched_by", "source", "environment"])
def test_build_refuses_metadata_that_utf8_cannot_encode(name: str) -> None:
    with pytest.raises(InvalidEventData) as caught:
        stored(**{name: "svc-\ud800"})
    assert caught.value.problems == [
        f"metadata.{name}: contains a lone surrogate U+D800 at index 4, which UTF-8 cannot encode"
    ]
    assert caught.value.event == "order_changed"
