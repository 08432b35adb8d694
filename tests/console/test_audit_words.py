"""The audit page's rows in words (``dispatcher/console/audit_words.py``): each action's row as
one sentence, the rest as ``label: value`` pairs, times in words, keyed hashes shortened. Pure;
the rows are shaped as each door writes them (``dispatcher/ops``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dispatcher.console import audit_words
from dispatcher.store.audit import AuditEntry

AT = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
RID = "3f2a9c1e-0000-4000-8000-000000000001"
KEY = "ab12" * 16


def line(action: str, selection: dict[str, Any], counts: dict[str, Any], actor: str = "alice"):
    return audit_words.describe(AuditEntry(7, AT, actor, action, selection, counts))


def test_each_action_reads_as_a_sentence():
    cases = [
        (
            line(
                "retry",
                {
                    "endpoint": "pharmacy",
                    "event": "order_changed",
                    "since": "2026-12-01 00:00:00+00:00",
                    "statuses": ["failed"],
                    "with_payload": True,
                    "via": "console",
                },
                {"matched": 12, "requeued": 12, "awaiting_reconcile": 0, "skipped_endpoint_disabled": 0},
            ),
            "alice (console) retried 12 failed deliveries to pharmacy, event order_changed, since 2026-12-01",
        ),
        (
            line("retry", {"request_ids": [RID], "via": "console"}, {"requeued": 1, "left_alone": 0}),
            f"alice (console) retried delivery {RID}",
        ),
        (
            line("retry", {"request_ids": [RID, RID, RID]}, {"requeued": 2, "left_alone": 1}, actor="root"),
            "root retried 2 of 3 deliveries chosen by request id",
        ),
        (
            line(
                "replay",
                {
                    "endpoint": "lab",
                    "since": "2026-12-01T08:15:00+00:00",
                    "until": "2026-12-02T00:00:00+00:00",
                },
                {"matched": 40, "replayed": 39, "skipped": 1, "held_back": 0},
            ),
            "alice replayed 39 deliveries (of 40 matched) to lab, since 2026-12-01 08:15 UTC, until 2026-12-02",
        ),
        (
            line(
                "prune",
                {"statuses": ["delivered", "failed"], "updated_before": "2026-11-01 00:00:00+00:00"},
                {"matched": 1, "deleted": 1, "attempts_deleted": 3},
            ),
            "alice deleted 1 delivery (delivered, failed), last changed before 2026-11-01",
        ),
        (
            line("retention run", {"payload_days": 30, "rows_days": None}, {"erased": 5, "deleted": 0}),
            "alice applied retention (payloads kept 30 days, rows kept for ever): erased the payloads of "
            "5 deliveries and deleted 0 deliveries",
        ),
        (
            line("log erase", {"patient_key": KEY}, {"matched": 2, "erased": 2, "attempts_erased": 2}),
            "alice erased the event data and answers of 2 deliveries of one patient",
        ),
        (
            line("log erase", {"patient_key": KEY, "dry_run": True}, {"matched": 3, "erased": 0}),
            "alice looked up the deliveries of one patient to erase, changing nothing: 3 found",
        ),
        (
            line(
                "log export",
                {"rows": "deliveries", "format": "csv", "event": "order_changed"},
                {"rows": 1204},
            ),
            "alice exported 1,204 delivery rows as csv, event order_changed",
        ),
        (
            line("endpoints disable", {"endpoint": "lab", "reason": "410 Gone"}, {"changed": 1}),
            "alice disabled endpoint lab: 410 Gone",
        ),
        (
            line(
                "endpoints enable",
                {"endpoint": "lab", "resend": True},
                {"changed": 1, "held_back": 4, "requeued": 4},
            ),
            "alice enabled endpoint lab, re-queueing 4 held-back deliveries",
        ),
        (
            line("endpoints enable", {"endpoint": "lab"}, {"changed": 0, "held_back": 0, "requeued": 0}),
            "alice enabled endpoint lab (it was enabled already)",
        ),
        (
            line("storage rotate", {"key_id": "k2"}, {"to_do": 10, "sealed": 10, "unreadable": 0}),
            "alice re-sealed 10 stored values under storage key k2",
        ),
        (
            line("delivery reveal", {"request_id": RID, "via": "console"}, {}),
            f"alice (console) revealed the event data and answers of delivery {RID}",
        ),
        (line("something new", {}, {}), "alice did something new"),
    ]
    for described, sentence in cases:
        assert described.sentence == sentence


def test_what_the_sentence_leaves_out_is_listed_and_nothing_is_a_python_repr():
    described = line(
        "log erase",
        {"request_ids": [f"r-{i}" for i in range(5)], "encounter_keys": [KEY]},
        {"matched": 5, "erased": 4, "attempts_erased": 9, "pending": 1, "not_found": 0},
    )
    assert described.sentence.startswith("alice erased the event data and answers of 4 deliveries chosen by")
    assert "r-0, r-1, r-2 and 2 more" in described.sentence
    assert described.details == (("attempts erased", "9"), ("pending", "1"))
    assert (described.id, described.at, described.action) == (7, AT, "log erase")
    hashed = line(
        "retry", {"business_key": KEY, "patient_keys": [KEY], "statuses": ["failed"]}, {"requeued": 0}
    )
    assert hashed.sentence == "alice retried 0 failed deliveries of one patient, found by business id"
    for text in (described.sentence, *(v for _, v in described.details), hashed.sentence):
        assert "{" not in text and "[" not in text and "'" not in text


def test_values_read_as_words():
    assert audit_words.shown("since", "2026-12-01T08:00:05+00:00") == "2026-12-01 08:00:05 UTC"
    assert audit_words.shown("since", AT) == "2026-12-04 09:30 UTC"
    assert audit_words.shown("patient_key", KEY) == KEY[:12] + "…"
    assert audit_words.shown("dry_run", True) == "yes" and audit_words.shown("n", 1234567) == "1,234,567"
    assert audit_words.shown("reason", None) == "none"
    assert audit_words.moment("2026-13-45 99:99") is None and audit_words.moment("soon") is None
    assert audit_words.plural(1, "delivery", "deliveries") == "1 delivery"


def test_the_endpoint_and_alert_actions_read_as_sentences():
    console = {"via": "console"}
    cases = [
        (
            line(
                "endpoints add",
                {"endpoint": "northside", "settings": ["url", "events"], **console},
                {"added": 1},
            ),
            "alice (console) added endpoint northside with url, events",
        ),
        (
            line("endpoints edit", {"endpoint": "lab", "settings": ["url", "timeout"]}, {"changed": 2}),
            "alice changed url, timeout of endpoint lab",
        ),
        (
            line("endpoints edit", {"endpoint": "lab", "settings": []}, {"changed": 0}),
            "alice changed nothing of endpoint lab",
        ),
        (line("endpoints pause", {"endpoint": "lab"}, {"changed": 1}), "alice paused endpoint lab"),
        (
            line("endpoints pause", {"endpoint": "lab"}, {"changed": 0}),
            "alice paused endpoint lab (it was paused already)",
        ),
        (
            line("endpoints resume", {"endpoint": "lab"}, {"changed": 1, "woken": 4}),
            "alice resumed endpoint lab, sending on 4 waiting deliveries",
        ),
        (
            line("endpoints resume", {"endpoint": "lab"}, {"changed": 0, "woken": 0}),
            "alice resumed endpoint lab (it was not paused)",
        ),
        (
            line("endpoints rotate-key", {"endpoint": "lab", "settings": ["key"]}, {"rotated": 1}),
            "alice rotated the key of endpoint lab, sent from the next attempt",
        ),
        (
            line(
                "endpoints rotate-secret",
                {"endpoint": "lab", "settings": ["signing_secret"], "grace_seconds": 86400},
                {"rotated": 1, "retiring": 1},
            ),
            "alice rotated the signing secret of endpoint lab, the old one signing beside it for 1 day",
        ),
        (
            line(
                "endpoints rotate-secret",
                {"endpoint": "lab", "settings": ["signing_secret"], "grace_seconds": 0},
                {"rotated": 1, "retiring": 0},
            ),
            "alice rotated the signing secret of endpoint lab, the old one stopping at once",
        ),
        (
            line("endpoints remove", {"endpoint": "lab", "force": True}, {"removed": 1, "failed": 3}),
            "alice removed endpoint lab, failing 3 pending deliveries",
        ),
        (
            line("endpoints remove", {"endpoint": "lab"}, {"removed": 1, "failed": 0}),
            "alice removed endpoint lab",
        ),
        (
            line(
                "endpoints import",
                {
                    "source": "config.yaml",
                    "added": ["a"],
                    "replace": True,
                    "changed": ["b"],
                    "removed": ["c"],
                },
                {"added": 1, "changed": 1, "removed": 1, "failed": 2},
            ),
            "alice imported the endpoints of config.yaml, replacing them: added a; rewrote b; removed c; "
            "failing 2 pending deliveries",
        ),
        (
            line("endpoints import", {"added": []}, {"added": 0, "changed": 0, "removed": 0, "failed": 0}),
            "alice imported the endpoints: the database held them already",
        ),
        (
            line("alerts test", {"channels": ["oncall", "mail"]}, {"sent": 1, "failed": 1}),
            "alice sent a test alert to oncall, mail (1 sent, 1 failed)",
        ),
        (
            line("api tokens create", {"name": "ehr-bridge", "scopes": ["send", "read"]}, {"created": 1}),
            "alice created API token ehr-bridge with scopes send, read",
        ),
        (
            line("api tokens revoke", {"name": "ehr-bridge"}, {"revoked": 1}),
            "alice revoked API token ehr-bridge",
        ),
        (
            line("api tokens revoke", {"name": "ehr-bridge"}, {"revoked": 0}),
            "alice revoked API token ehr-bridge (it was revoked already)",
        ),
    ]
    for described, sentence in cases:
        assert described.sentence == sentence
        assert described.details == (), described.details  # every key the doors write is said
    assert audit_words.span(7200) == "2 hours" and audit_words.span(90) == "90 seconds"
    assert audit_words.span(1209600) == "2 weeks" and audit_words.span(1800) == "30 minutes"
