"""``${NAME}`` in the file: replaced from the environment in string values only, ``$${`` a
literal ``${``, an unset variable an error naming the setting and the variable, and no error
ever printing a variable's value."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from dispatcher.config import config_schema, load_settings, parse_settings
from dispatcher.config.interpolation import accept_references, expand
from dispatcher.contract.signing import generate_secret
from dispatcher.errors import ConfigError
from tests.config.conftest import ENDPOINT, assert_names

SECRET = "s3cr3t-value-31337"


def refused(raw: dict, env: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, env=env)
    assert "\n" not in str(caught.value)
    return caught.value


def test_a_whole_value_and_a_part_of_one_are_replaced() -> None:
    raw = {
        "database_url": "postgresql+psycopg://hooks:${DB_PASSWORD}@db.internal:5432/hooks",
        "endpoints": [{**ENDPOINT, "key": "${PHARMACY_KEY}", "signing_secret": ["${SIGNING}"]}],
    }
    signing = generate_secret()
    env = {"DB_PASSWORD": "pw-9", "PHARMACY_KEY": SECRET, "SIGNING": signing}
    settings = parse_settings(raw, env=env)
    assert settings.database_url == "postgresql+psycopg://hooks:pw-9@db.internal:5432/hooks"
    assert settings.endpoints[0].key == SECRET and settings.endpoints[0].signing_secrets == (signing,)
    assert SECRET in settings.secrets()  # masked in the process log like any configured key


def test_only_string_values_are_read_and_dollar_dollar_brace_is_a_literal() -> None:
    raw = {
        "source": "a $${b} $x $$ c",
        "console": {"proxy_roles": {"${NOT_A_VALUE}": "viewer"}},
    }
    settings = parse_settings(raw, env={"b": "no"})
    assert settings.source == "a ${b} $x $$ c"
    assert settings.console.proxy_roles == (("${NOT_A_VALUE}", "viewer"),)  # a key is not a value


def test_an_argon2_hash_keeps_its_dollars() -> None:
    raw = {"console": {"users": [{"name": "a", "password_hash": "$argon2id$v=19$m=1,t=1,p=1$salt$hash"}]}}
    user = parse_settings(raw, env={}).console.users[0]
    assert user.password_hash.reveal() == "$argon2id$v=19$m=1,t=1,p=1$salt$hash"


def test_an_unset_variable_names_the_setting_and_the_variable() -> None:
    raw = {"endpoints": [ENDPOINT, {**ENDPOINT, "name": "p2", "key": "${PHARMACY_KEY}"}]}
    error = refused(raw, {})
    assert str(error) == "config: endpoints[1].key: environment variable PHARMACY_KEY is not set"
    assert_names(refused({"storage_keys": ["${K1}"]}, {}), "storage_keys[0]")
    empty = refused({"source": "${SOURCE}"}, {"SOURCE": ""})
    assert str(empty) == "config: source: environment variable SOURCE is empty"


@pytest.mark.parametrize("text", ["${", "${}", "x ${1ABC}", "${A-B}", "${OPEN"])
def test_a_reference_that_is_not_a_name_is_refused(text: str) -> None:
    error = refused({"source": text}, {"OPEN": "x", "A": "y"})
    assert str(error) == (
        "config: source: ${ must be followed by a variable name and } (such as ${PARTNER_KEY}); "
        "write $${ for a literal ${"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"redis_url": "${REDIS}"},
            "redis_url: expected a redis:// URL or redis+sentinel://[user:password@]host:port[,host:port...]"
            "/MASTER_NAME[/DB], got '${REDIS}'",
        ),
        ({"endpoints": [{**ENDPOINT, "url": "${URL}"}]}, "got '${URL}'"),
        ({"worker": {"threads": "${THREADS}"}}, "worker.threads: expected an integer, got str '${THREADS}'"),
        ({"idempotency_ttl": "${TTL}"}, "idempotency_ttl: '${TTL}' is not a duration"),
        ({"allow_networks": ["${NET}"]}, "allow_networks[0]: expected a network like 127.0.0.0/8"),
        (
            {"environment": "production", "endpoints": [{**ENDPOINT, "url": "http://${HOST}/x"}]},
            "http://${HOST}/x",
        ),
        (
            {"endpoints": [{**ENDPOINT, "name": "${N}"}, {**ENDPOINT, "name": "${M}"}]},
            "duplicate endpoint name '${M}'",
        ),
    ],
)
def test_an_error_quotes_what_the_file_wrote_never_the_value(raw: dict, message: str) -> None:
    env = {name: SECRET for name in ("REDIS", "URL", "THREADS", "TTL", "NET", "HOST", "N", "M")}
    error = refused(raw, env)
    assert message in str(error)
    assert SECRET not in str(error) and SECRET[:10] not in str(error) and SECRET[-8:] not in str(error)


def test_a_variable_set_by_a_dispatcher_override_is_not_needed() -> None:
    settings = parse_settings(
        {"database_url": "${DATABASE_URL}"}, env={"DISPATCHER_DATABASE_URL": "sqlite:///over.db"}
    )
    assert settings.database_url == "sqlite:///over.db"


def test_a_file_is_read_with_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("endpoints:\n  - name: p\n    url: https://p.example.com/x\n    key: ${P_KEY}\n")
    assert load_settings(config, env={"P_KEY": SECRET}).endpoints[0].key == SECRET
    with pytest.raises(
        ConfigError, match=r"^config: endpoints\[0\]\.key: environment variable P_KEY is not set$"
    ):
        load_settings(config, env={})


def test_expand_copies_only_what_changed_and_says_what_came_from_the_environment() -> None:
    raw = {"a": ["plain", "x-${V}"], "b": {"c": 1}}
    expanded, written = expand(raw, {"V": "val"})
    assert expanded == {"a": ["plain", "x-val"], "b": {"c": 1}} and raw["a"][1] == "x-${V}"
    assert expanded["b"] is raw["b"]
    assert written == {"x-val": "x-${V}", "val": "${V}"}
    same = {"a": ["plain"]}
    assert expand(same, {}) == (same, {}) and expand(same, {})[0] is same


def test_the_schema_takes_a_reference_wherever_the_loader_does() -> None:
    validator = jsonschema.Draft202012Validator(config_schema())
    document = {
        "endpoints": [{"name": "a", "url": "https://${HOST}/x", "key": "${K}", "signing_secret": "${S}"}],
        "storage_keys": ["${STORAGE}"],
        "search_key": "${SEARCH}",
        "console": {"session_secret": "${SESSION}", "users": [{"name": "a", "password_hash": "${HASH}"}]},
    }
    assert [error.message for error in validator.iter_errors(document)] == []
    assert list(
        validator.iter_errors({"endpoints": [{"name": "a", "url": "https://a", "signing_secret": "no"}]})
    )


def test_accept_references_leaves_unconstrained_strings_and_other_types() -> None:
    plain = {"type": "string", "minLength": 1, "description": "d"}
    assert accept_references(plain) == plain
    assert accept_references({"type": "integer", "minimum": 1}) == {"type": "integer", "minimum": 1}
    wrapped = accept_references({"type": "string", "pattern": "^x$", "description": "d", "default": "x"})
    assert wrapped == {
        "description": "d",
        "default": "x",
        "anyOf": [{"type": "string", "pattern": "^x$"}, {"$ref": "#/$defs/EnvironmentReference"}],
    }
