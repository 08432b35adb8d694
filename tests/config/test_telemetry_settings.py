"""Telemetry's values and the ``OTEL_*`` variables (``dispatcher/config/telemetry_settings.py``):
each variable read, the file's key winning over it, a variable the file makes useless not read,
every bad value one line naming the variable and never quoting it, ``OTEL_SDK_DISABLED``; and
the loader reading them from the environment it is handed (never ``os.environ`` here)."""

from __future__ import annotations

import pytest

from dispatcher.config import Settings, TelemetrySettings, load_settings, parse_settings
from dispatcher.config.telemetry_settings import SAMPLERS, resolve_telemetry
from dispatcher.errors import ConfigError

COLLECTOR = "http://collector:4318"


def refused(env: dict[str, str], **file: object) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        resolve_telemetry(env, **file)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
    return caught.value


def test_the_values_default_to_off_and_every_trace() -> None:
    assert resolve_telemetry({}) == TelemetrySettings(None, "dispatcher", "parentbased_always_on", 1.0)
    assert Settings().telemetry == TelemetrySettings() and not Settings().telemetry.enabled
    assert TelemetrySettings(otlp_endpoint=COLLECTOR).enabled


def test_each_variable_fills_what_the_file_leaves_unset() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example.org/",
        "OTEL_SERVICE_NAME": "hooks-eu",
        "OTEL_TRACES_SAMPLER": "traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.125",
    }
    assert resolve_telemetry(env) == TelemetrySettings(
        "https://otel.example.org", "hooks-eu", "traceidratio", 0.125
    )


def test_a_key_set_in_the_file_wins_over_its_variable() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example.org",
        "OTEL_SERVICE_NAME": "hooks-eu",
        "OTEL_TRACES_SAMPLER": "always_off",
    }
    telemetry = resolve_telemetry(env, otlp_endpoint=COLLECTOR, service_name="hooks", sample_ratio=0.5)
    assert telemetry == TelemetrySettings(COLLECTOR, "hooks", "parentbased_traceidratio", 0.5)
    # One key set, the others from their variables.
    telemetry = resolve_telemetry(env, service_name="hooks")
    assert telemetry == TelemetrySettings("https://otel.example.org", "hooks", "always_off", 1.0)


def test_a_variable_the_file_makes_useless_is_not_read() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://nowhere",
        "OTEL_SERVICE_NAME": "x" * 300,
        "OTEL_TRACES_SAMPLER": "jaeger_remote",
        "OTEL_TRACES_SAMPLER_ARG": "lots",
    }
    telemetry = resolve_telemetry(env, otlp_endpoint=COLLECTOR, service_name="hooks", sample_ratio=0.5)
    assert telemetry.otlp_endpoint == COLLECTOR


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_is_taken(sampler: str) -> None:
    telemetry = resolve_telemetry({"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": "0.5"})
    expected = 0.5 if sampler.endswith("traceidratio") else 1.0  # the argument only for a ratio
    assert (telemetry.sampler, telemetry.ratio) == (sampler, expected)


def test_a_sampler_s_name_is_taken_in_any_case_and_its_argument_defaults_to_1() -> None:
    telemetry = resolve_telemetry({"OTEL_TRACES_SAMPLER": " ParentBased_TraceIdRatio "})
    assert (telemetry.sampler, telemetry.ratio) == ("parentbased_traceidratio", 1.0)


@pytest.mark.parametrize("arg", ["0", "1", "1.0", "0.25", "1e-3"])
def test_a_ratio_from_0_to_1(arg: str) -> None:
    telemetry = resolve_telemetry({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": arg})
    assert telemetry.ratio == float(arg)


def test_an_argument_without_a_ratio_sampler_is_not_read() -> None:
    assert resolve_telemetry({"OTEL_TRACES_SAMPLER_ARG": "lots"}).sampler == "parentbased_always_on"


@pytest.mark.parametrize("value", ["true", "TRUE", " True "])
def test_sdk_disabled_turns_telemetry_off_whatever_the_file_says(value: str) -> None:
    env = {"OTEL_SDK_DISABLED": value, "OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR, "OTEL_SERVICE_NAME": "hooks"}
    assert resolve_telemetry(env) == TelemetrySettings(None, "hooks")
    assert not resolve_telemetry(env, otlp_endpoint=COLLECTOR).enabled


@pytest.mark.parametrize("value", ["false", "FALSE", ""])
def test_sdk_disabled_false_or_empty_leaves_it_on(value: str) -> None:
    assert resolve_telemetry({"OTEL_SDK_DISABLED": value}, otlp_endpoint=COLLECTOR).enabled


def test_an_empty_variable_is_as_if_unset() -> None:
    env = {name: "" for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER")}
    assert resolve_telemetry(env) == TelemetrySettings()


@pytest.mark.parametrize(
    ("env", "variable", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://secret-31337:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "must be an http:// or https:// URL with a host"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://u:pw-31337@c:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "must not carry credentials"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/?k=31337"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "must not have a query (?) or a fragment (#)"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/#31337"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "must not have a query"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:31337x"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "is not a valid URL"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " http://c31337:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "must not contain control characters"),
        ({"OTEL_SERVICE_NAME": "   "}, "OTEL_SERVICE_NAME", "must not be empty"),
        ({"OTEL_SERVICE_NAME": "31337" * 52}, "OTEL_SERVICE_NAME", "must be at most 255 characters, got 260"),
        ({"OTEL_SERVICE_NAME": "bad-\udcff-31337"}, "OTEL_SERVICE_NAME", "is not valid text"),
        ({"OTEL_TRACES_SAMPLER": "sampler-31337"}, "OTEL_TRACES_SAMPLER", "must be one of: always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio"),
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "OTEL_TRACES_SAMPLER", "must be one of: always_on,"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "31337"}, "OTEL_TRACES_SAMPLER_ARG", "must be a number from 0 to 1"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "-0.31337"}, "OTEL_TRACES_SAMPLER_ARG", "must be a number from 0 to 1"),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half-31337"}, "OTEL_TRACES_SAMPLER_ARG", "must be a number from 0 to 1"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "nan"}, "OTEL_TRACES_SAMPLER_ARG", "must be a number from 0 to 1"),
        ({"OTEL_SDK_DISABLED": "yes-31337"}, "OTEL_SDK_DISABLED", "must be true or false"),
    ],
)  # fmt: skip
def test_a_bad_variable_is_one_line_naming_it_never_quoting_it(
    env: dict, variable: str, message: str
) -> None:
    error = refused(env)
    assert error.setting == variable
    assert str(error).startswith(f"config: {variable}: {message}")
    assert "31337" not in str(error)


def test_the_loader_reads_the_variables_from_the_environment_it_is_handed(tmp_path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("telemetry:\n  service_name: hooks\n", encoding="utf-8")
    env = {
        "DISPATCHER_CONFIG": str(config),
        "OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR,
        "OTEL_SERVICE_NAME": "x",
    }
    telemetry = load_settings(env=env).telemetry
    assert telemetry == TelemetrySettings(COLLECTOR, "hooks", "parentbased_always_on", 1.0)
    with pytest.raises(ConfigError, match=r"^config: OTEL_TRACES_SAMPLER: must be one of"):
        parse_settings({}, env={"OTEL_TRACES_SAMPLER": "sometimes"})


def test_a_bad_variable_stops_the_load_even_with_dispatcher_overrides() -> None:
    env = {"DISPATCHER_REDIS_URL": "redis://127.0.0.1:6379/3", "OTEL_SDK_DISABLED": "maybe"}
    with pytest.raises(ConfigError, match=r"^config: OTEL_SDK_DISABLED: must be true or false$"):
        parse_settings({}, env=env)
