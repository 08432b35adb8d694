"""Standard Webhooks signatures (https://www.standardwebhooks.com), beside the seed's key.

An endpoint with ``signing_secret: whsec_<base64>`` (or a list of them, for rotation) gets
three more headers on every attempt: ``webhook-id`` (the request_id), ``webhook-timestamp``
(unix seconds of this attempt) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of
"id.timestamp.body">``, one per secret, space-separated. Any Standard Webhooks library verifies it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
MIN_BYTES = 24
MAX_BYTES = 64


def decode_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_`` secret.

    Raises:
        ValueError: not ``whsec_`` + base64 of 24 to 64 bytes.
    """
    if not isinstance(secret, str) or not secret.startswith(PREFIX):
        raise ValueError("must start with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be 'whsec_' followed by base64") from None
    if not MIN_BYTES <= len(key) <= MAX_BYTES:
        raise ValueError(f"must decode to {MIN_BYTES}-{MAX_BYTES} bytes, got {len(key)}")
    return key


def generate_secret(size: int = 32) -> str:
    """A fresh random secret in the ``whsec_`` form."""
    return PREFIX + base64.b64encode(secrets.token_bytes(size)).decode("ascii")


def signature_headers(request_id: str, timestamp: int, body: bytes, keys: list[bytes]) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt, signed with every key."""
    signed = f"{request_id}.{timestamp}.".encode() + body
    signatures = " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
        for key in keys
    )
    return {"webhook-id": request_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures}
