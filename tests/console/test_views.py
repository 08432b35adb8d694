"""What a page shows of a delivery (``dispatcher/console/views.py``): in the list, why it is not
delivered in a few words; on its page, the wrapper with ``data`` held back and each attempt with
the partner's words held back until revealed, secrets masked either way. Pure."""

from __future__ import annotations

import json

from dispatcher.console import views

KEY = "endpoint-key-do-not-show-4242"
PAYLOAD = {
    "event": "order_changed",
    "data": {"order_number": "ORDER123", "status": "updated"},
    "metadata": {"request_id": "r-1", "webhook_key": KEY},
}


def mask(text: str) -> str:
    return text.replace(KEY, "****")


def attempt(**changes: object) -> dict[str, object]:
    return {
        "attempt": 1,
        "outcome": "failed",
        "http_status": 500,
        "response_body": None,
        "error": None,
    } | changes


def test_the_wrapper_holds_back_data_until_revealed_and_masks_secrets_either_way():
    hidden = views.wrapper_text(PAYLOAD, False, mask)
    assert json.loads(hidden)["data"] == views.HIDDEN
    assert json.loads(hidden)["metadata"] == {"request_id": "r-1", "webhook_key": "****"}
    assert "ORDER123" not in hidden and KEY not in hidden
    shown = views.wrapper_text(PAYLOAD, True, mask)
    assert json.loads(shown)["data"] == PAYLOAD["data"] and KEY not in shown
    assert shown.startswith("{\n  ")  # indented
    assert PAYLOAD["data"] == {"order_number": "ORDER123", "status": "updated"}  # not changed


def test_an_erased_payload_is_none_and_a_payload_as_text_is_hidden_until_revealed():
    assert views.wrapper_text(None, True, mask) is None
    assert views.wrapper_text(f"raw {KEY} ORDER123", False, mask) == views.HIDDEN
    assert views.wrapper_text(f"raw {KEY} ORDER123", True, mask) == "raw **** ORDER123"


def test_the_timeline_shows_outcomes_to_all_and_the_partners_words_once_revealed():
    long = "x" * (views.FIRST_BYTES + 10)
    attempts = [attempt(response_body="short answer", error="Internal Server Error"), attempt(attempt=2)]
    attempts.append(attempt(attempt=3, response_body=long))
    hidden = views.timeline(attempts, False)
    assert [row["attempt"] for row in hidden] == [1, 2, 3]
    assert [(row["has_body"], row["has_error"]) for row in hidden] == [
        (True, True),
        (False, False),
        (True, False),
    ]
    assert all(row["body"] is None and row["error"] is None for row in hidden)
    assert all("response_body" not in row and row["http_status"] == 500 for row in hidden)
    first, second, third = views.timeline(attempts, True)
    assert (first["body"], first["error"]) == ("short answer", "Internal Server Error")
    assert (second["body"], second["error"]) == (None, None)
    assert third["body"] == "x" * views.FIRST_BYTES + "…"
    assert attempts[0]["response_body"] == "short answer"  # the document is not changed


def test_there_is_phi_to_reveal_when_a_payload_an_answer_or_an_error_is_kept():
    assert views.has_phi({"payload": PAYLOAD, "attempts": []})
    assert views.has_phi({"payload": None, "attempts": [attempt(), attempt(error="HTTP 500")]})
    assert views.has_phi({"payload": None, "attempts": [attempt(response_body="answer")]})
    assert not views.has_phi({"payload": None, "attempts": [attempt(), attempt(response_body="")]})


def listed(**changes: object) -> dict[str, object]:
    return {"status": "failed", "reason": None, "last_failure": None, "last_http_status": None} | changes


def test_the_reason_column_names_the_failure_category_in_a_few_words():
    cases = [
        (listed(reason="HTTP 503; attempts exhausted (8 of 8)", last_http_status=503), "HTTP 503"),
        (listed(reason="HTTP 404 is not retried", last_http_status=404), "HTTP 404"),
        (listed(reason="timeout; attempts exhausted (5 of 5)", last_failure="timeout"), "timeout"),
        (listed(reason="dns_error; attempts exhausted (5 of 5)"), "DNS error"),
        (listed(reason="destination_refused", last_failure="destination_refused"), "refused: not allowed"),
        (listed(reason="endpoint_disabled"), "endpoint disabled"),
        (listed(reason="stored payload is unusable: ValueError"), "payload unreadable"),
        (listed(reason="stored payload is unreadable: it was erased"), "payload unreadable"),
        (listed(reason="endpoint 'lab' is no longer configured"), "endpoint removed"),
        (listed(reason="tls_error"), "TLS error"),  # a kind this list has no words for yet
        (listed(reason="x" * 60), "x" * 27 + "…"),
        (listed(reason="a certificate for another host name entirely"), "a certificate for another h…"),
        (listed(status="retrying", last_failure="connection_error"), "connection error"),
        (listed(status="retrying", last_http_status=503), "HTTP 503"),
        (listed(status="queued"), ""),  # never attempted
        (listed(status="in_flight", last_http_status=200), ""),
        (listed(status="delivered", last_http_status=200, reason="stale"), ""),
    ]
    for row, words in cases:
        assert views.reason_column(row) == words, row


def test_a_breaker_in_words():
    from datetime import UTC, datetime

    from dispatcher.sending.breaker import BreakerView
    from dispatcher.vocabulary import BreakerState

    until = datetime(2026, 12, 7, 8, 31, 5, tzinfo=UTC)
    assert views.breaker_words(BreakerView(BreakerState.OPEN, until), off=False) == (
        "open until 08:31:05 UTC",
        "failing",
    )
    assert views.breaker_words(BreakerView(BreakerState.HALF_OPEN), off=False) == ("half-open", "degraded")
    assert views.breaker_words(BreakerView(BreakerState.CLOSED), off=False) == ("closed", "healthy")
    assert views.breaker_words(None, off=False) == ("—", "idle")  # Redis did not answer
    assert views.breaker_words(BreakerView(BreakerState.OPEN, until), off=True) == ("off", "idle")
