"""Standard Webhooks signatures, verified with the published `standardwebhooks` package."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from dispatcher.contract.signing import decode_secret, generate_secret, signature_headers
from dispatcher.ops.receiver import verify_signature

BODY = b'{"event":"order_changed","data":{"order_number":"ORDER123"}}'


def test_generated_secrets_are_valid_and_distinct():
    first, second = generate_secret(), generate_secret()
    assert first != second and first.startswith("whsec_")
    assert len(decode_secret(first)) == 32


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("FjDfaNf6S054L", "must start with 'whsec_'"),
        ("whsec_not base64!!", "base64"),
        ("whsec_" + base64.b64encode(b"x" * 23).decode(), "24-64 bytes"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24-64 bytes"),
    ],
)
def test_bad_secrets_are_rejected(secret, problem):
    with pytest.raises(ValueError, match=problem):
        decode_secret(secret)


def test_signature_verifies_with_the_standardwebhooks_package():
    secret = generate_secret()
    now = int(time.time())
    headers = signature_headers("msg-1", now, BODY, [decode_secret(secret)])
    assert Webhook(secret).verify(BODY, headers) == {
        "event": "order_changed",
        "data": {"order_number": "ORDER123"},
    }
    # and the package's own signature equals ours
    theirs = Webhook(secret).sign("msg-1", datetime.fromtimestamp(now, UTC), BODY.decode())
    assert headers["webhook-signature"] == theirs


def test_a_tampered_body_or_another_secret_fails_verification():
    secret = generate_secret()
    headers = signature_headers("msg-1", int(time.time()), BODY, [decode_secret(secret)])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"123", b"124"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)


def test_rotation_signs_with_every_secret():
    old, new = generate_secret(), generate_secret()
    headers = signature_headers("msg-2", int(time.time()), BODY, [decode_secret(old), decode_secret(new)])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)


def test_reference_receiver_verification_agrees():
    secret = generate_secret()
    headers = signature_headers("msg-3", int(time.time()), BODY, [decode_secret(secret)])
    assert verify_signature(secret, BODY, headers)
    assert not verify_signature(secret, BODY + b" ", headers)
    stale = signature_headers("msg-3", int(time.time()) - 3600, BODY, [decode_secret(secret)])
    assert not verify_signature(secret, BODY, stale)
