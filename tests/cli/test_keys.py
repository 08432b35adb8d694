"""``dispatcher keys generate`` in-process (click's runner): a fresh Standard Webhooks signing
secret of the asked length, a storage key or a search key, each one line the config takes as it is."""

from __future__ import annotations

import pytest

from dispatcher.config import parse_settings
from dispatcher.contract.signing import decode_secret
from dispatcher.store.sealing import check_key
from tests.cli.helpers import invoke


def generated(*options: str) -> str:
    result = invoke("keys", "generate", *options)
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1
    return result.stdout.strip()


def test_a_signing_secret_is_whsec_and_32_bytes_by_default_and_fresh_each_time() -> None:
    first, second = generated(), generated()
    assert first.startswith("whsec_") and len(decode_secret(first)) == 32
    assert first != second
    assert [len(decode_secret(generated("--bytes", size))) for size in ("24", "64")] == [24, 64]


def test_a_signing_secret_is_what_an_endpoint_takes() -> None:
    secret = generated("--bytes", "48")
    endpoint = {"name": "p", "url": "https://p.example.com/hook", "key": "k-1", "signing_secret": secret}
    settings = parse_settings({"endpoints": [endpoint]}, env={})
    assert settings.endpoints[0].signing_secrets == (secret,)


def test_a_storage_key_is_32_bytes_and_what_storage_keys_takes() -> None:
    key = generated("--storage")
    assert not key.startswith("whsec_") and len(check_key(key)) == 32
    assert generated("--storage") != key
    settings = parse_settings({"storage_keys": [key]}, env={})
    assert settings.storage_keys[0] == key


@pytest.mark.parametrize("size", ["23", "65", "many"])
def test_a_length_out_of_range_is_a_usage_error(size: str) -> None:
    result = invoke("keys", "generate", "--bytes", size)
    assert result.exit_code == 2 and result.stdout == ""
    assert "'--bytes'" in result.stderr and size in result.stderr


def test_a_search_key_is_fresh_and_what_search_key_takes() -> None:
    key = generated("--search")
    assert not key.startswith("whsec_") and len(key) >= 32 and generated("--search") != key
    assert parse_settings({"search_key": key}, env={}).search_key == key


def test_storage_and_search_together_is_a_usage_error() -> None:
    result = invoke("keys", "generate", "--storage", "--search")
    assert result.exit_code == 2 and result.stdout == ""
    assert "--storage and --search: choose one" in result.stderr
