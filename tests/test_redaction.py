"""dispatcher.redaction: a secret masked however it was escaped; a URL's password hidden."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest
import requests

from dispatcher import store
from dispatcher.redaction import MASK, Masker, escaped_forms, mask_url

KEY = "sk_live/9f8e 7d6c"
NEWLINE_KEY = "sk_live_9f8e7d6c\n"  # what a YAML block scalar gives


# --- Masker ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        KEY,
        repr(KEY),
        json.dumps(KEY),
        quote(KEY, safe=""),
        quote(KEY),
        quote_plus(KEY),
        quote(KEY, safe="").lower(),
        json.dumps(repr(KEY)),  # a repr inside a JSON document
    ],
)
def test_a_secret_is_masked_in_each_spelling(spelling: str) -> None:
    text = f"refused {spelling} at the door"
    masked = Masker([KEY]).mask(text)
    assert "sk_live" not in masked and "9f8e" not in masked and "7d6c" not in masked
    assert masked.startswith("refused ") and masked.endswith(" at the door")
    assert MASK in masked


@pytest.mark.parametrize(
    "spelling",
    [
        NEWLINE_KEY,
        "'sk_live_9f8e7d6c\\n'",  # repr
        '"sk_live_9f8e7d6c\\n"',  # JSON
        "sk_live_9f8e7d6c%0A",  # URL-quoted
        "sk_live_9f8e7d6c",  # stripped
        "'sk_live_9f8e7d6c\\\\n'",  # the repr exported inside JSON
    ],
)
def test_a_secret_with_a_trailing_newline_is_masked_in_each_spelling(spelling: str) -> None:
    assert "9f8e" not in Masker([NEWLINE_KEY]).mask(f"error: {spelling}.")


def test_the_error_requests_gives_for_a_bad_header_is_masked() -> None:
    """The real text that reached attempt errors, the process log and the database."""
    with pytest.raises(requests.exceptions.InvalidHeader) as caught:
        requests.Request("POST", "https://p.example.com/", headers={"X-Webhook-Key": NEWLINE_KEY}).prepare()
    text = f"{type(caught.value).__name__}: {caught.value}"
    assert "sk_live_9f8e7d6c" in text
    masked = Masker([NEWLINE_KEY]).mask(text)
    assert "sk_live" not in masked and "9f8e" not in masked
    assert "header value" in masked


def test_a_non_ascii_secret_is_masked_escaped() -> None:
    secret = "clé-secrète"
    masker = Masker([secret])
    for spelling in (secret, json.dumps(secret), repr(secret.encode()), quote(secret)):
        assert "cr" not in masker.mask(spelling).replace("ascii", ""), spelling


def test_the_longest_secret_is_masked_first() -> None:
    masker = Masker(["abc", "abcdef"])
    assert masker.mask("value abcdef and abc") == f"value {MASK} and {MASK}"


def test_without_secrets_nothing_changes() -> None:
    masker = Masker(["", ""])
    assert not masker
    assert masker.mask("a 'b' \"c\"") == "a 'b' \"c\""
    assert masker.mask(None) is None


def test_a_masker_is_callable_and_keeps_none() -> None:
    masker = Masker(["s3cret"])
    assert masker("x s3cret") == f"x {MASK}"
    assert masker.mask(None) is None and masker.mask("") == ""


def test_a_whitespace_only_secret_masks_nothing() -> None:
    assert escaped_forms("   ") == set() == escaped_forms("\n")
    assert not Masker([" ", "\t\n"])
    assert all(form.strip() for form in escaped_forms(" s3cret\n"))


# --- mask_url ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:hunter2@cache:6379/0", "redis://:****@cache:6379/0"),
        ("redis://default:hunter2@cache:6379/0", "redis://default:****@cache:6379/0"),
        ("rediss://u:hun%2Fter2@cache:6380/1", "rediss://u:****@cache:6380/1"),
        ("redis://hunter2@cache:6379/0", "redis://****@cache:6379/0"),
        (
            "redis+sentinel://user:hunter2@h1:26379,h2:26379/mymaster/0",
            "redis+sentinel://user:****@h1:26379,h2:26379/mymaster/0",
        ),
        ("redis://cache:6379/0?password=hunter2&db=1", "redis://cache:6379/0?password=****&db=1"),
        ("unix://:hunter2@/run/redis.sock?db=0", "unix://:****@/run/redis.sock?db=0"),
        ("redis://:hun@ter2@cache/0", "redis://:****@cache/0"),
        ("postgresql+psycopg://app:hunter2@db:5432/hooks", "postgresql+psycopg://app:****@db:5432/hooks"),
        ("postgresql://app:hun/ter?2@db/hooks", "postgresql://app:****@db/hooks"),  # SQLAlchemy's reading
        ("redis://[::1]:6379/0", "redis://[::1]:6379/0"),
        ("sqlite:///storage/webhooks.db", "sqlite:///storage/webhooks.db"),
        (
            "https://partner.example.com/hooks/ops@example.com",
            "https://partner.example.com/hooks/ops@example.com",
        ),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert "hunter2" not in mask_url(url) and "ter2" not in mask_url(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("user:hunter2@cache:6379", "user://..."),
        ("not a url at all", "?://..."),
        ("", "?://..."),
        ("::::", "?://..."),
        ("redis://[::1:hunter2@x", "redis://[:****@x"),
    ],
)
def test_mask_url_never_raises_and_shows_little_of_what_it_cannot_read(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert "hunter2" not in mask_url(url)


def test_mask_url_of_something_that_is_not_text_does_not_raise() -> None:
    assert mask_url(None) == "?://..."  # type: ignore[arg-type]


def test_the_store_shows_database_urls_through_mask_url() -> None:
    assert store.safe_url("postgresql://app:hunter2@db/hooks") == "postgresql://app:****@db/hooks"
