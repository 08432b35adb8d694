"""Loading the configuration (``dispatcher/config/loading.py``): the defaults, the YAML file, the
environment overrides, production's rules, retention and storage keys, the endpoints and the
backoff as a whole. The types' bounds are ``test_fields.py``, the checks ``test_checks.py``, an
error's wording ``test_problems.py``, the values themselves ``test_settings.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dispatcher.config import (
    DEFAULT_PROCESS_LOG,
    DEFAULT_QUEUE_NAME,
    ExponentialBackoff,
    ListBackoff,
    RetentionSettings,
    Settings,
    load_settings,
    parse_settings,
)
from dispatcher.errors import ConfigError

from .conftest import ENDPOINT, assert_names, config_error, parse

ROOT = Path(__file__).resolve().parents[2]


def write_yaml(tmp_path: Path, raw: object, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


# --- defaults --------------------------------------------------------------------------------


@pytest.fixture
def no_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without ./config.yaml, so load_settings() falls back to defaults."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults(no_local_config: Path) -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.source == "Baremeds"
    assert settings.environment == "production"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.database_url == "sqlite:///storage/webhooks.db"
    assert settings.queue_name == "send-webhook-request" == DEFAULT_QUEUE_NAME
    assert settings.process_log == "storage/logs/send-webhook-request-process.log" == DEFAULT_PROCESS_LOG
    assert settings.endpoints == ()
    delivery = settings.delivery
    assert delivery.timeout == 30
    assert delivery.connect_timeout == 5
    assert delivery.max_attempts == 8
    assert delivery.retry_4xx == (408, 425, 429)
    assert isinstance(delivery.backoff, ExponentialBackoff)
    assert delivery.backoff == ExponentialBackoff()


def test_empty_mapping_and_none_give_the_defaults() -> None:
    assert parse({}) == Settings()
    assert parse_settings(None, env={}) == Settings()


def test_local_config_yaml_is_used_when_no_env_var(no_local_config: Path) -> None:
    write_yaml(no_local_config, {"environment": "local-dir"})
    assert load_settings(env={}).environment == "local-dir"


# --- loading a file --------------------------------------------------------------------------


def test_load_settings_from_a_yaml_file_path(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        {
            "source": "Acme",
            "environment": "staging",
            "redis_url": "redis://10.0.0.5:6379/2",
            "database_url": "postgresql+psycopg://u@db/webhooks",
            "queue_name": "hooks",
            "process_log": "/var/log/hooks.log",
            "delivery": {
                "timeout": 12.5,
                "connect_timeout": 2,
                "max_attempts": 3,
                "backoff": [10, 60, 300],
                "retry_4xx": [429],
            },
            "endpoints": [
                {
                    "name": "partner-a",
                    "url": "https://partner.example.com/hook",
                    "key": "k-1",
                    "events": ["order_changed", "message_created"],
                    "include_key_in_body": True,
                },
                {"name": "partner-b", "url": "http://127.0.0.1:8080/in"},
            ],
        },
    )
    for given in (path, str(path)):
        settings = load_settings(given, env={})
        assert settings.source == "Acme"
        assert settings.environment == "staging"
        assert settings.redis_url == "redis://10.0.0.5:6379/2"
        assert settings.database_url == "postgresql+psycopg://u@db/webhooks"
        assert settings.queue_name == "hooks"
        assert settings.process_log == "/var/log/hooks.log"
        assert settings.delivery.timeout == 12.5
        assert settings.delivery.connect_timeout == 2
        assert settings.delivery.max_attempts == 3
        assert settings.delivery.backoff == ListBackoff((10, 60, 300))
        assert settings.delivery.backoff.maximum == 300
        assert settings.delivery.retry_4xx == (429,)
        a, b = settings.endpoints
        assert (a.name, a.url, a.key, a.events, a.include_key_in_body, a.key_configured) == (
            "partner-a",
            "https://partner.example.com/hook",
            "k-1",
            ("order_changed", "message_created"),
            True,
            True,
        )
        assert a.subscribes_to("order_changed")
        assert not a.subscribes_to("encounter_cancelled")
        assert b.events == ("*",)
        assert b.subscribes_to("case_assigned_to_clinician")
        assert b.include_key_in_body is False
        assert settings.endpoint("partner-b") is b
        assert settings.endpoint("partner-c") is None


def test_empty_yaml_file_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# nothing set\n", encoding="utf-8")
    assert load_settings(path, env={}) == Settings()


def test_dispatcher_config_env_var_names_the_file(tmp_path: Path, no_local_config: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    write_yaml(no_local_config, {"environment": "from-cwd"})
    path = write_yaml(other, {"environment": "from-env-var"}, name="dispatcher.yaml")
    assert load_settings(env={"DISPATCHER_CONFIG": str(path)}).environment == "from-env-var"


def test_dispatcher_config_env_var_naming_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"DISPATCHER_CONFIG": str(missing)})
    assert_names(caught.value, "DISPATCHER_CONFIG")
    assert str(missing) in str(caught.value)


def test_missing_file_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.yaml", env={})


@pytest.mark.parametrize(
    "text", ["source: [unclosed\n", "delivery:\n  timeout: 30\n bad-indent: 1\n", "a: b: c\n"]
)
def test_bad_yaml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert caught.value.setting == str(path)
    assert "not valid YAML" in str(caught.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_yaml_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(path, env={})


# --- environment overrides -------------------------------------------------------------------


def test_env_overrides_the_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, {"redis_url": "redis://file:6379/0", "database_url": "sqlite:///file.db"})
    env = {
        "DISPATCHER_REDIS_URL": "redis://env-host:6380/5",
        "DISPATCHER_DATABASE_URL": "postgresql+psycopg://env@db:5432/hooks",
    }
    settings = load_settings(path, env=env)
    assert settings.redis_url == "redis://env-host:6380/5"
    assert settings.database_url == "postgresql+psycopg://env@db:5432/hooks"


def test_each_env_override_is_independent(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, {"redis_url": "redis://file:6379/0", "database_url": "sqlite:///file.db"})
    only_redis = load_settings(path, env={"DISPATCHER_REDIS_URL": "redis://env:6379/1"})
    assert (only_redis.redis_url, only_redis.database_url) == ("redis://env:6379/1", "sqlite:///file.db")
    only_db = load_settings(path, env={"DISPATCHER_DATABASE_URL": "sqlite:///env.db"})
    assert (only_db.redis_url, only_db.database_url) == ("redis://file:6379/0", "sqlite:///env.db")


def test_env_overrides_apply_over_the_defaults() -> None:
    settings = parse_settings(
        {}, env={"DISPATCHER_REDIS_URL": "redis://r:1/2", "DISPATCHER_DATABASE_URL": "sqlite:///x.db"}
    )
    assert settings.redis_url == "redis://r:1/2"
    assert settings.database_url == "sqlite:///x.db"


def test_empty_env_override_is_ignored() -> None:
    settings = parse_settings({"redis_url": "redis://file:6379/0"}, env={"DISPATCHER_REDIS_URL": ""})
    assert settings.redis_url == "redis://file:6379/0"


def test_env_override_is_validated() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({}, env={"DISPATCHER_REDIS_URL": "http://not-redis"})
    assert_names(caught.value, "redis_url")


def test_os_environ_is_used_when_env_is_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCHER_REDIS_URL", "redis://from-os-environ:6379/3")
    monkeypatch.delenv("DISPATCHER_DATABASE_URL", raising=False)
    assert parse_settings({}).redis_url == "redis://from-os-environ:6379/3"


# --- production, retention, endpoints --------------------------------------------------------


def test_production_requires_https_and_tls_verification() -> None:
    with pytest.raises(
        ConfigError, match=r"endpoints\[0\]\.url: must be https:// when environment is production"
    ):
        parse(
            {"environment": "production", "endpoints": [{**ENDPOINT, "url": "http://partner.example.com/in"}]}
        )
    with pytest.raises(
        ConfigError, match=r"delivery\.tls_verify: must be true when environment is production"
    ):
        parse({"environment": "production", "delivery": {"tls_verify": False}})
    staging = parse({"environment": "staging", "delivery": {"tls_verify": False}})
    assert staging.delivery.verify is False


def test_production_warns_about_the_default_key() -> None:
    from dispatcher.config import production_warnings

    key = "q5BqS0yWgpkq4qQJ2mFnqFqR5c1Y3-Z3c8pV7m5a2Yc="
    settings = parse(
        {
            "environment": "production",
            "storage_keys": [key],
            "endpoints": [{"name": "p", "url": "https://p.example.com"}],
        }
    )
    assert production_warnings(settings) == [
        "endpoints[0].key: endpoint 'p' uses the default key xxx; configure a unique key"
    ]
    assert (
        production_warnings(
            parse({"environment": "staging", "endpoints": [{"name": "p", "url": "http://p.example.com"}]})
        )
        == []
    )


def test_a_production_worker_needs_storage_keys() -> None:
    from dispatcher.config import production_warnings, require_for_worker

    settings = parse({"environment": "production"})
    with pytest.raises(ConfigError) as caught:
        require_for_worker(settings)
    assert str(caught.value).startswith("config: storage_keys: required in production")
    assert production_warnings(settings)[0].startswith("storage_keys: required in production")
    require_for_worker(parse({"environment": "staging"}))  # a test or staging worker may run without


def test_retention_and_storage_keys() -> None:
    key = "q5BqS0yWgpkq4qQJ2mFnqFqR5c1Y3-Z3c8pV7m5a2Yc="
    assert parse({}).retention == RetentionSettings(payload_days=30, rows_days=None)
    kept = parse({"retention": {"payload_days": None, "rows_days": 365}, "storage_keys": [key]})
    assert kept.retention == RetentionSettings(payload_days=None, rows_days=365)
    assert kept.storage_keys == (key,) and key in kept.secrets()
    from_env = parse_settings({}, env={"DISPATCHER_STORAGE_KEYS": f" {key} ,{key}"})
    assert from_env.storage_keys == (key, key)
    for raw, setting, problem in [
        (
            {"retention": {"payload_days": -1}},
            "retention.payload_days",
            "must be greater than 0 days, got -1",
        ),
        ({"retention": {"rows_days": "30"}}, "retention.rows_days", "expected an integer"),
        ({"retention": {"days": 3}}, "retention.days", "unknown setting"),
        ({"storage_keys": ["c2hvcnQ="]}, "storage_keys[0]", "it decodes to 5 bytes, not 32"),
        ({"storage_keys": "abc"}, "storage_keys", "expected a list"),
    ]:
        error = config_error(raw)
        assert_names(error, setting)
        assert problem in str(error)
    with pytest.raises(ConfigError) as caught:
        parse_settings({}, env={"DISPATCHER_STORAGE_KEYS": "not-a-key"})
    assert caught.value.setting == "storage_keys[0]"
    assert "not-a-key" not in str(caught.value) and "DISPATCHER_STORAGE_KEYS" in str(caught.value)


def test_duplicate_endpoint_names_are_rejected() -> None:
    endpoints = [
        ENDPOINT,
        {"name": "other", "url": "https://o.example.com"},
        {**ENDPOINT, "url": "https://x.example.com"},
    ]
    error = config_error({"endpoints": endpoints})
    assert_names(error, "endpoints[2].name")
    assert "duplicate" in str(error)
    assert "'partner-a'" in str(error)


@pytest.mark.parametrize("missing", ["name", "url"])
def test_missing_name_or_url_is_rejected(missing: str) -> None:
    endpoint = {k: v for k, v in ENDPOINT.items() if k != missing}
    error = config_error({"endpoints": [endpoint]})
    assert_names(error, f"endpoints[0].{missing}")
    assert "required" in str(error)


# --- backoff ---------------------------------------------------------------------------------


def test_backoff_exponential_string() -> None:
    assert parse({"delivery": {"backoff": "exponential"}}).delivery.backoff == ExponentialBackoff()


def test_backoff_list() -> None:
    backoff = parse({"delivery": {"backoff": [10, 60, 300]}}).delivery.backoff
    assert backoff == ListBackoff((10, 60, 300))
    assert backoff.maximum == 300.0


@pytest.mark.parametrize(
    ("backoff", "setting"),
    [
        ([10, 0, 300], "delivery.backoff[1]"),
        ([0], "delivery.backoff[0]"),
        ([-5], "delivery.backoff[0]"),
        (["10", 60], "delivery.backoff[0]"),
        ([10, "1m"], "delivery.backoff[1]"),
        ([10, 1.5], "delivery.backoff[1]"),
        ([True], "delivery.backoff[0]"),
        ([], "delivery.backoff"),
    ],
)
def test_bad_backoff_lists_are_rejected(backoff: list, setting: str) -> None:
    assert_names(config_error({"delivery": {"backoff": backoff}}), setting)


def test_backoff_mapping_form() -> None:
    backoff = parse(
        {"delivery": {"backoff": {"base": 5, "multiplier": 3, "cap": 600, "jitter": 0.25}}}
    ).delivery.backoff
    assert backoff == ExponentialBackoff(base=5.0, multiplier=3.0, cap=600.0, jitter=0.25)
    assert backoff.maximum == 600.0


def test_backoff_mapping_fills_in_the_defaults() -> None:
    backoff = parse({"delivery": {"backoff": {"jitter": 0}}}).delivery.backoff
    default = ExponentialBackoff()
    assert backoff == ExponentialBackoff(
        base=default.base, multiplier=default.multiplier, cap=default.cap, jitter=0.0
    )


@pytest.mark.parametrize(
    ("mapping", "setting"),
    [
        ({"base": 0}, "delivery.backoff.base"),
        ({"base": "30"}, "delivery.backoff.base"),
        ({"multiplier": 0.5}, "delivery.backoff.multiplier"),
        ({"base": 100, "cap": 50}, "delivery.backoff.cap"),
        ({"jitter": 1.5}, "delivery.backoff.jitter"),
        ({"jitter": -0.1}, "delivery.backoff.jitter"),
        ({"jitter": True}, "delivery.backoff.jitter"),
    ],
)
def test_bad_backoff_mappings_are_rejected(mapping: dict, setting: str) -> None:
    assert_names(config_error({"delivery": {"backoff": mapping}}), setting)


# --- config.example.yaml ---------------------------------------------------------------------


def test_config_example_yaml_is_a_development_config_for_the_local_receiver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dispatcher.config import default_key_warnings, production_warnings

    monkeypatch.chdir(tmp_path)
    settings = load_settings(ROOT / "config.example.yaml", env={})
    assert settings.environment == "development" and settings.database_url.startswith("sqlite:///")
    assert settings.allow_networks == ("127.0.0.0/8", "::1/128")
    (local,) = settings.endpoints
    assert (local.name, local.url) == ("local", "http://127.0.0.1:8787/webhooks")  # receiver's default port
    assert local.key == "local-dev-key"  # `dispatcher receiver --key local-dev-key`
    assert production_warnings(settings) == [] and default_key_warnings(settings) == []


def test_the_search_key() -> None:
    assert parse({}).search_key is None
    key = "k" * 31 + "~"
    settings = parse({"search_key": key})
    assert settings.search_key == key and key in settings.secrets()
    for bad in ("k" * 31, "k" * 31 + "\u00e9", "k" * 31 + "\n"):
        error = config_error({"search_key": bad})
        assert_names(error, "search_key")
        assert "at least 32 printable ASCII characters" in str(error) and bad not in str(error)
    error = config_error({"search_key": 12345678901234567890123456789012345})
    assert str(error) == "config: search_key: expected a string, got int"  # never quoted


def test_default_key_warnings_in_any_environment() -> None:
    from dispatcher.config import default_key_warnings

    endpoints = [{"name": "p", "url": "http://p.example.com"}, {**ENDPOINT, "key": "k"}]
    for environment in ("development", "staging"):
        assert default_key_warnings(parse({"environment": environment, "endpoints": endpoints})) == [
            "endpoints[0].key: endpoint 'p' uses the default key xxx; configure a unique key"
        ]
    written = parse({"endpoints": [{**ENDPOINT, "key": "xxx"}]})
    assert default_key_warnings(written) == [
        "endpoints[0].key: endpoint 'partner-a' uses the default key xxx; configure a unique key"
    ]


def test_worker_threads() -> None:
    assert parse_settings({}, env={}).worker_threads == 16
    assert parse_settings({"worker": {"threads": 4}}, env={}).worker_threads == 4
    for bad in (0, 65):
        with pytest.raises(ConfigError) as caught:
            parse_settings({"worker": {"threads": bad}}, env={})
        assert_names(caught.value, "worker.threads")
    with pytest.raises(ConfigError) as caught:
        parse_settings({"worker": {"threads": "many"}}, env={})
    assert_names(caught.value, "worker.threads")
    with pytest.raises(ConfigError) as caught:
        parse_settings({"worker": {"procs": 2}}, env={})
    assert_names(caught.value, "worker.procs")
