"""The ``telemetry:`` section of the file (``dispatcher/config/telemetry.py``) and an endpoint's
``propagate_trace``: the defaults, each key read into :class:`TelemetrySettings`, every bad value
one line naming the key, the JSON Schema taking what the file takes, ``config check``'s document
keyed like the file, and ``propagate_trace`` off by default and kept through the database's form.
The ``OTEL_*`` variables are ``test_telemetry_settings.py``."""

from __future__ import annotations

import jsonschema
import pytest

from dispatcher.config import TelemetrySettings, config_schema, parse_settings
from dispatcher.config.document import settings_document
from dispatcher.config.endpoint_file import EndpointFile
from dispatcher.config.endpoint_records import endpoint_definition, endpoint_from_definition
from dispatcher.config.model import ConfigFile
from dispatcher.errors import ConfigError
from tests.config.conftest import ENDPOINT, assert_names, config_error, parse


def test_telemetry_is_off_by_default() -> None:
    telemetry = parse({}).telemetry
    assert telemetry == TelemetrySettings(None, "dispatcher", "parentbased_always_on", 1.0)
    assert telemetry.enabled is False
    assert parse({"telemetry": {}}).telemetry == telemetry


def test_every_key_is_read() -> None:
    telemetry = parse(
        {
            "telemetry": {
                "otlp_endpoint": "http://collector:4318",
                "service_name": "hooks",
                "sample_ratio": 0.25,
            }
        }
    ).telemetry
    assert telemetry == TelemetrySettings("http://collector:4318", "hooks", "parentbased_traceidratio", 0.25)
    assert telemetry.enabled is True


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("http://collector:4318/", "http://collector:4318"),
        ("https://otel.example.org/otlp/", "https://otel.example.org/otlp"),
        ("https://[::1]:4318", "https://[::1]:4318"),
        ("https://otel.example.org/v1/traces-gateway/", "https://otel.example.org/v1/traces-gateway"),
    ],
)
def test_the_endpoint_is_kept_without_a_trailing_slash(written: str, kept: str) -> None:
    assert parse({"telemetry": {"otlp_endpoint": written}}).telemetry.otlp_endpoint == kept


@pytest.mark.parametrize("ratio", [0, 0.0, 1, 1.0, 0.5])
def test_a_sample_ratio_from_0_to_1_inclusive(ratio: float) -> None:
    telemetry = parse({"telemetry": {"sample_ratio": ratio}}).telemetry
    assert (telemetry.sampler, telemetry.ratio) == ("parentbased_traceidratio", float(ratio))
    assert isinstance(telemetry.ratio, float)


@pytest.mark.parametrize(
    ("telemetry", "setting", "message"),
    [
        ({"otlp_endpoint": "grpc://collector:4317"}, "otlp_endpoint", "must be an http:// or https:// URL"),
        (
            {"otlp_endpoint": "collector:4318"},
            "otlp_endpoint",
            "is missing http:// or https:// in front: expected an http:// or https:// URL such as "
            "http://collector:4318",
        ),
        (
            {"otlp_endpoint": "u:pw-31337@collector:4318"},
            "otlp_endpoint",
            "is missing http:// or https:// in front",
        ),
        (
            {"otlp_endpoint": "http://collector:4318/v1/traces"},
            "otlp_endpoint",
            "ends in /v1/traces, which the exporter appends: give the collector's base URL, "
            "without /v1/traces",
        ),
        (
            {"otlp_endpoint": "https://otel.example.org/otlp/v1/metrics/"},
            "otlp_endpoint",
            "give the collector's base URL, without /v1/metrics",
        ),
        ({"otlp_endpoint": "http://"}, "otlp_endpoint", "must be an http:// or https:// URL with a host"),
        (
            {"otlp_endpoint": "http://u:pw-31337@collector:4318"},
            "otlp_endpoint",
            "must not carry credentials",
        ),
        ({"otlp_endpoint": "http://collector:4318?a=1"}, "otlp_endpoint", "must not have a query (?)"),
        ({"otlp_endpoint": "http://collector:4318/#x"}, "otlp_endpoint", "or a fragment (#)"),
        ({"otlp_endpoint": "http://collector:43x8"}, "otlp_endpoint", "is not a valid URL"),
        ({"otlp_endpoint": "http://[::1:4318"}, "otlp_endpoint", "is not a valid URL"),
        ({"otlp_endpoint": "http://c:4318\n"}, "otlp_endpoint", "must not contain control characters"),
        ({"otlp_endpoint": 4318}, "otlp_endpoint", "expected a string, got int 4318"),
        ({"otlp_endpoint": None}, "otlp_endpoint", "expected a string"),
        ({"service_name": ""}, "service_name", "must not be empty"),
        ({"service_name": "   "}, "service_name", "must not be empty"),
        ({"service_name": "s" * 256}, "service_name", "must be at most 255 characters, got 256"),
        ({"service_name": 7}, "service_name", "expected a string"),
        ({"sample_ratio": 1.5}, "sample_ratio", "must be a number from 0 to 1, got 1.5"),
        ({"sample_ratio": -0.1}, "sample_ratio", "must be a number from 0 to 1, got -0.1"),
        ({"sample_ratio": "0.5"}, "sample_ratio", "expected a number, got str '0.5'"),
        ({"sample_ratio": True}, "sample_ratio", "expected a number"),
        ({"sample_ratio": float("nan")}, "sample_ratio", "must be a finite number"),
        (
            {"sampler": "always_on"},
            "sampler",
            "unknown setting; expected one of: otlp_endpoint, service_name",
        ),
    ],
)
def test_a_bad_key_is_one_line_naming_it(telemetry: dict, setting: str, message: str) -> None:
    error = config_error({"telemetry": telemetry})
    assert_names(error, f"telemetry.{setting}")
    assert message in str(error) and "\n" not in str(error)
    assert "31337" not in str(error)  # a collector's password is never quoted


def test_a_scheme_mistake_quotes_the_url_cut_short() -> None:
    error = config_error({"telemetry": {"otlp_endpoint": "ftp://collector/" + "x" * 500}})
    assert "got 'ftp://collector/" in str(error) and len(str(error)) < 300


def test_a_scheme_left_out_says_so_and_quotes_nothing() -> None:
    """``collector:4318`` is not taken for a URL of scheme ``collector``."""
    error = config_error({"telemetry": {"otlp_endpoint": "collector:4318"}})
    assert str(error) == (
        "config: telemetry.otlp_endpoint: is missing http:// or https:// in front: expected an "
        "http:// or https:// URL such as http://collector:4318"
    )


def test_a_bad_file_key_stays_an_error_whatever_the_variables() -> None:
    """The file is ours: OTEL_SDK_DISABLED or a variable never excuses a bad key."""
    env = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    with pytest.raises(ConfigError) as caught:
        parse_settings({"telemetry": {"otlp_endpoint": "http://collector:4318/v1/traces"}}, env=env)
    assert_names(caught.value, "telemetry.otlp_endpoint")


def test_service_name_left_out_is_not_taken_as_set() -> None:
    """The default service name is the file's only when written: a variable fills it otherwise
    (telemetry on)."""
    env = {"OTEL_SERVICE_NAME": "from-env", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert parse_settings({}, env=env).telemetry.service_name == "from-env"
    written = {"telemetry": {"service_name": "dispatcher"}}
    assert parse_settings(written, env=env).telemetry.service_name == "dispatcher"


def test_the_file_model_alone_reads_no_environment() -> None:
    file = ConfigFile.model_validate({})
    assert file.to_settings().telemetry == TelemetrySettings()
    env = {"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert file.to_settings(env).telemetry.service_name == "x"
    assert file.to_settings({"OTEL_SERVICE_NAME": "x"}).telemetry.service_name == "dispatcher"  # off


@pytest.mark.parametrize(
    "telemetry",
    [
        {},
        {"otlp_endpoint": "http://collector:4318", "service_name": "hooks", "sample_ratio": 0},
        {"otlp_endpoint": "https://otel.example.org/otlp/", "sample_ratio": 1},
        {"otlp_endpoint": "https://otel.example.org/v1/traces-gateway"},
        {"otlp_endpoint": "${OTEL_COLLECTOR_URL}"},
    ],
)
def test_the_schema_takes_what_the_file_takes(telemetry: dict) -> None:
    validator = jsonschema.Draft202012Validator(config_schema())
    assert [e.message for e in validator.iter_errors({"telemetry": telemetry})] == []


@pytest.mark.parametrize(
    "telemetry",
    [
        {"otlp_endpoint": "grpc://collector:4317"},
        {"otlp_endpoint": "http://u:p@collector:4318"},
        {"otlp_endpoint": "http://collector:4318?a=1"},
        {"otlp_endpoint": "collector:4318"},
        {"otlp_endpoint": "http://collector:4318/v1/traces"},
        {"otlp_endpoint": "https://otel.example.org/otlp/v1/metrics/"},
        {"service_name": ""},
        {"service_name": "s" * 256},
        {"sample_ratio": 2},
        {"sample_ratio": "0.5"},
        {"sampler": "always_on"},
    ],
)
def test_the_schema_refuses_what_the_file_refuses(telemetry: dict) -> None:
    validator = jsonschema.Draft202012Validator(config_schema())
    assert list(validator.iter_errors({"telemetry": telemetry})) != []


@pytest.mark.parametrize(
    ("env", "ratio"),
    [
        ({}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, 0.0),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, 0.0),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}, 0.1),
    ],
)
def test_config_check_shows_the_share_the_sampler_keeps(env: dict, ratio: float) -> None:
    on = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", **env}
    document = settings_document(parse_settings({}, env=on))
    assert document["telemetry"] == {
        "otlp_endpoint": "http://collector:4318",
        "service_name": "dispatcher",
        "sample_ratio": ratio,
    }


def test_config_check_shows_the_section_as_the_file_writes_it() -> None:
    written = {"otlp_endpoint": "http://collector:4318", "service_name": "hooks", "sample_ratio": 0.5}
    document = settings_document(parse({"telemetry": written}))
    assert document["telemetry"] == written
    validator = jsonschema.Draft202012Validator(config_schema())
    assert list(validator.iter_errors({"telemetry": document["telemetry"]})) == []


# --- an endpoint's propagate_trace -------------------------------------------------------------


def test_propagate_trace_is_off_by_default() -> None:
    (endpoint,) = parse({"endpoints": [ENDPOINT]}).endpoints
    assert endpoint.propagate_trace is False
    assert "propagate_trace" not in endpoint_definition(
        endpoint, parse({}).delivery
    )  # a default is not written
    assert EndpointFile.model_json_schema()["properties"]["propagate_trace"]["default"] is False


def test_propagate_trace_is_read_and_kept_through_the_database_s_form() -> None:
    settings = parse({"endpoints": [{**ENDPOINT, "propagate_trace": True}]})
    (endpoint,) = settings.endpoints
    assert endpoint.propagate_trace is True
    definition = endpoint_definition(endpoint, settings.delivery)
    assert definition["propagate_trace"] is True
    assert endpoint_from_definition(definition, settings) == endpoint
    assert settings_document(settings)["endpoints"][0]["propagate_trace"] is True


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_propagate_trace_is_true_or_false_only(value: object) -> None:
    error = config_error({"endpoints": [{**ENDPOINT, "propagate_trace": value}]})
    assert_names(error, "endpoints[0].propagate_trace")
    assert "expected true or false" in str(error)
