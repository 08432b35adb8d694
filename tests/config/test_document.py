"""The effective settings as ``config check`` prints them: keyed exactly as the file is (every
key one the JSON Schema knows, every value one it accepts), every secret masked."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from dispatcher.config import config_schema, parse_settings
from dispatcher.config.document import settings_document
from dispatcher.contract.signing import generate_secret
from tests.config.conftest import ENDPOINT

HASH = "$argon2id$v=19$m=1,t=1,p=1$salt$hash-31337"
STORAGE_KEY = "KlJtPQ3RtJK714n-i00gwv9-5KxcybK_I0X4uBgY56Q="
SIGNING = generate_secret()
EVERYTHING = {
    "environment": "staging",
    "redis_url": "redis://default:redis-pw-31337@127.0.0.1:6379/2",
    "database_url": "postgresql+psycopg://hooks:db-pw-31337@127.0.0.1:5432/hooks",
    "delivery": {
        "backoff": [10, 60],
        "proxy": "http://egress:px-31337@proxy.internal:3128",
        "no_proxy": [".lan"],
    },
    "endpoints": [
        {
            **ENDPOINT,
            "key": "key-31337",
            "signing_secret": SIGNING,
            "timeout": 10,
            "backoff": {"base": 5},
            "max_concurrency": 4,
            "rate_per_second": 2.5,
            "disable_after": {"failed_deliveries": 3, "window": "1d"},
            "ordered": True,
            "headers": {"X-Partner-Account": "acct-31337"},
            "auth": {"basic": {"username": "clinic", "password": "basic-31337"}},
            "tls_client_cert": {"cert": __file__, "key_password": "kp-31337"},
            "proxy": "none",
            "propagate_trace": True,
        },
        {
            "name": "partner-b",
            "url": "https://b.example.com/hook",
            "auth": {
                "oauth2": {
                    "token_url": "https://b.example.com/token",
                    "client_id": "c",
                    "client_secret": "cs-31337",
                }
            },
        },
    ],
    "allow_networks": ["10.0.0.0/8"],
    "metrics": {"port": 9200},
    "worker": {"threads": 4},
    "retention": {"payload_days": 7, "rows_days": 90},
    "idempotency_ttl": "2h",
    "storage_keys": [STORAGE_KEY],
    "search_key": "search-key-31337-" + "x" * 20,
    "console": {
        "users": [{"name": "olivia", "password_hash": HASH, "role": "operator"}],
        "session_secret": "session-secret-31337-" + "y" * 20,
        "trusted_proxy": {"from": ["10.0.0.0/8"]},
        "proxy_roles": {"*": "viewer"},
        "allowed_hosts": ["console.example.org"],
        "public_url": "https://console.example.org",
    },
    "telemetry": {"otlp_endpoint": "https://collector.internal:4318/", "sample_ratio": 0.25},
}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return [_without_nulls(v) for v in value] if isinstance(value, list) else value


def _document() -> dict[str, Any]:
    return settings_document(parse_settings(EVERYTHING, env={}))


def test_the_document_is_keyed_as_the_file_and_valid_against_its_schema() -> None:
    document = _document()
    assert list(document) == list(config_schema()["properties"])  # every top-level key, in order
    assert document["worker"] == {"threads": 4}
    assert document["idempotency_ttl"] == 7200
    endpoint = document["endpoints"][0]
    assert "signing_secret" in endpoint and "key_configured" not in endpoint and "delivery" not in endpoint
    assert document["console"]["trusted_proxy"] == {"header": "X-Forwarded-User", "from": ["10.0.0.0/8"]}
    # A mask stands for a secret, and null for a setting left out.
    masked = _without_nulls(json.loads(json.dumps(document).replace('"****"', '"${MASKED}"')))
    masked["endpoints"][0]["signing_secret"] = [SIGNING]
    masked["endpoints"][1]["key"] = "xxx"
    errors = [
        f"{list(e.path)}: {e.message}"
        for e in jsonschema.Draft202012Validator(config_schema()).iter_errors(masked)
    ]
    assert errors == []


def test_endpoint_delivery_settings_are_the_ones_in_force() -> None:
    first, second = _document()["endpoints"]
    assert (first["timeout"], first["max_attempts"]) == (10.0, 8)
    assert first["backoff"] == {"base": 5.0, "multiplier": 2.5, "cap": 3600.0, "jitter": 0.1}
    assert second["backoff"] == [10, 60] and second["timeout"] == 30.0  # the global ones
    assert first["disable_after"] == {"failed_deliveries": 3, "window": 86400}
    assert (second["disable_after"], second["max_concurrency"]) == (None, None)


def test_every_secret_is_masked() -> None:
    document = _document()
    text = json.dumps(document)
    assert "31337" not in text and SIGNING not in text and STORAGE_KEY not in text and HASH not in text
    assert document["redis_url"] == "redis://default:****@127.0.0.1:6379/2"
    assert document["endpoints"][0]["key"] == "****" and document["endpoints"][1]["key"] == "xxx (default)"
    assert document["endpoints"][0]["signing_secret"] == ["whsec_****"]
    assert document["storage_keys"] == ["****"] and document["search_key"] == "****"
    assert document["console"]["users"][0]["password_hash"] == "****"
    assert document["console"]["session_secret"] == "****"
    first, second = document["endpoints"]
    assert first["headers"] == {"X-Partner-Account": "****"}
    assert first["auth"] == {"basic": {"username": "clinic", "password": "****"}}
    assert first["tls_client_cert"] == {"cert": __file__, "key": None, "key_password": "****"}
    assert (
        second["auth"]["oauth2"]["client_secret"] == "****" and second["auth"]["oauth2"]["client_id"] == "c"
    )
    assert document["delivery"]["proxy"] == "http://egress:****@proxy.internal:3128"


def test_the_defaults_document() -> None:
    document = settings_document(parse_settings({}, env={}))
    assert document["endpoints"] == [] and document["metrics"] is None and document["search_key"] is None
    assert document["delivery"]["backoff"] == {"base": 30.0, "multiplier": 2.5, "cap": 3600.0, "jitter": 0.1}
    assert document["console"]["session_secret"] is None and document["console"]["trusted_proxy"] is None
