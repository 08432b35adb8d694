"""``redis+sentinel://`` URLs: read into the Sentinels, the primary's name and the database;
refused by name when malformed, the password never quoted."""

from __future__ import annotations

import pytest

from dispatcher.config import parse_settings
from dispatcher.config.redis_urls import SentinelAddress, parse_sentinel_url
from dispatcher.errors import ConfigError


def test_a_full_url_is_read_part_by_part() -> None:
    address = parse_sentinel_url(
        "redis+sentinel://app:p%40ss@10.0.0.5:26379,sentinel-b:26380,[::1]:26381/clinic-primary/3"
        "?sentinel_password=s-secret"
    )
    assert address == SentinelAddress(
        sentinels=(("10.0.0.5", 26379), ("sentinel-b", 26380), ("::1", 26381)),
        master="clinic-primary",
        db=3,
        username="app",
        password="p@ss",
        sentinel_password="s-secret",
    )
    assert "p@ss" not in repr(address) and "s-secret" not in repr(address)


def test_the_database_defaults_to_0_and_a_lone_password_is_the_password() -> None:
    address = parse_sentinel_url("redis+sentinel://:only-pass@h:26379/mymaster")
    assert (address.db, address.username, address.password) == (0, None, "only-pass")
    assert parse_sentinel_url("REDIS+SENTINEL://h:1/m/2").db == 2


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel://h:26379", "names no primary (MASTER_NAME)"),
        ("redis+sentinel://h:26379/", "names no primary (MASTER_NAME)"),
        ("redis+sentinel://h/mymaster", "each Sentinel must be host:port"),
        ("redis+sentinel://h:1,/mymaster", "each Sentinel must be host:port"),
        ("redis+sentinel://h:99999/mymaster", "each Sentinel must be host:port"),
        ("redis+sentinel://h:1/mymaster/zero", "the part after MASTER_NAME must be a database number"),
        ("redis+sentinel://h:1/mymaster/0/more", "the part after MASTER_NAME must be a database number"),
        ("redis+sentinel://h:1/mymaster?timeout=3", "unknown option 'timeout'"),
    ],
)
def test_a_malformed_url_is_refused_naming_the_setting(url: str, problem: str) -> None:
    secret_url = url.replace("redis+sentinel://", "redis+sentinel://:hunter2@")
    with pytest.raises(ConfigError) as caught:
        parse_settings({"redis_url": secret_url}, env={})
    message = str(caught.value)
    assert message.startswith("config: redis_url: ") and problem in message
    assert "hunter2" not in message and "****" in message


def test_a_sentinel_url_is_taken_from_the_file_and_the_environment() -> None:
    url = "redis+sentinel://10.0.0.5:26379,10.0.0.6:26379/mymaster/0"
    assert parse_settings({"redis_url": url}, env={}).redis_url == url
    assert parse_settings({}, env={"DISPATCHER_REDIS_URL": url}).redis_url == url
