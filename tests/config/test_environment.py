"""The ``DISPATCHER_*`` overrides, read with pydantic-settings: checked as the file's settings are,
named with their variable in an error, and a list variable (comma-separated) ready to add."""

from __future__ import annotations

import pytest

from dispatcher.config import parse_settings
from dispatcher.config.environment import read_overrides
from dispatcher.errors import ConfigError


def refused(raw: dict, env: dict) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, env=env)
    return caught.value


def test_the_environment_wins_over_a_file_value_it_replaces() -> None:
    """As before: the file's value is replaced, not checked (a placeholder in a shared file)."""
    settings = parse_settings(
        {"redis_url": "to be set by the environment"}, env={"DISPATCHER_REDIS_URL": "redis://r:6379/1"}
    )
    assert settings.redis_url == "redis://r:6379/1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DISPATCHER_REDIS_URL": "http://:hunter2@cache:6379/0"},
            "redis_url: expected a redis:// URL or "
            "redis+sentinel://[user:password@]host:port[,host:port...]/MASTER_NAME[/DB], "
            "got 'http://:****@cache:6379/0' (set by DISPATCHER_REDIS_URL)",
        ),
        (
            {"DISPATCHER_DATABASE_URL": "postgresql:u@db"},
            "database_url: expected an SQLAlchemy URL such as sqlite:///path.db, got 'postgresql://...' "
            "(set by DISPATCHER_DATABASE_URL)",
        ),
        (
            {"DISPATCHER_DATABASE_URL": "   "},
            "database_url: must not be empty (set by DISPATCHER_DATABASE_URL)",
        ),
    ],
)
def test_a_bad_variable_names_the_setting_and_the_variable(env: dict, message: str) -> None:
    assert str(refused({}, env)) == f"config: {message}"


def test_a_variable_with_a_byte_that_is_not_utf8_is_refused() -> None:
    """os.environ decodes a bad byte as a lone surrogate (surrogateescape)."""
    error = refused({}, {"DISPATCHER_REDIS_URL": "redis://cache\udcff:6379/0"})
    assert error.setting == "redis_url"
    assert "lone surrogate" in error.problem and error.problem.endswith("(set by DISPATCHER_REDIS_URL)")


def test_only_the_variables_in_capitals_are_read() -> None:
    settings = parse_settings({}, env={"dispatcher_redis_url": "redis://lower:6379/0"})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


def test_other_variables_are_ignored() -> None:
    settings = parse_settings(
        {}, env={"DISPATCHER_CONFIG": "/nowhere.yaml", "DISPATCHER_OTHER": "x", "PATH": "/usr/bin"}
    )
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


def test_read_overrides_gives_only_what_is_set() -> None:
    assert read_overrides({"DISPATCHER_DATABASE_URL": "sqlite:///x.db", "DISPATCHER_REDIS_URL": ""}) == {
        "database_url": "sqlite:///x.db"
    }


def test_a_list_variable_is_comma_separated() -> None:
    env = {"DISPATCHER_STORAGE_KEYS": " key-1, key-2 ,,key-3 ", "DISPATCHER_REDIS_URL": "redis://r:1/0"}
    assert read_overrides(env) == {
        "storage_keys": ["key-1", "key-2", "key-3"],
        "redis_url": "redis://r:1/0",
    }
    assert read_overrides({}) == {}


def test_a_list_variable_is_checked_naming_it() -> None:
    with pytest.raises(ConfigError) as caught:
        read_overrides({"DISPATCHER_STORAGE_KEYS": "key-1,k\udcffey"})
    assert caught.value.setting == "storage_keys[1]"
    assert caught.value.problem.endswith("(set by DISPATCHER_STORAGE_KEYS)")


def test_a_list_variable_is_read_from_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's own environment, as a worker reads it: validating reads no variable again."""
    import os

    monkeypatch.setenv("DISPATCHER_STORAGE_KEYS", "key-1,key-2")
    assert read_overrides(os.environ) == {"storage_keys": ["key-1", "key-2"]}


def test_the_search_key_variable_overrides_the_file_and_is_checked_without_quoting_it() -> None:
    key = "env-search-key-" + "s" * 20
    settings = parse_settings(
        {"search_key": "file-search-key-" + "f" * 20}, env={"DISPATCHER_SEARCH_KEY": key}
    )
    assert settings.search_key == key and key in settings.secrets()
    short = "short-search-key-31337"
    error = refused({}, {"DISPATCHER_SEARCH_KEY": short})
    assert str(error) == (
        "config: search_key: must be at least 32 printable ASCII characters "
        "(dispatcher keys generate --search prints one) (set by DISPATCHER_SEARCH_KEY)"
    )
    assert "31337" not in str(error)
