"""Telemetry's values and the ``OTEL_*`` variables (``dispatcher/config/telemetry_settings.py``):
each variable read while telemetry is on, and only then; the file's key winning over it, a
variable the file makes useless not read; telemetry never stopping a dispatch: a variable this
project cannot use is the default and one warning naming the variable, never an error and never
its value; ``OTEL_SDK_DISABLED`` as OpenTelemetry reads it; and the loader reading them from the
environment it is handed (never ``os.environ`` here)."""

from __future__ import annotations

import pytest

from dispatcher.config import Settings, TelemetrySettings, load_settings, parse_settings
from dispatcher.config.telemetry_settings import SAMPLERS, resolve_telemetry

COLLECTOR = "http://collector:4318"
ON = {"OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR}
"""A host whose telemetry is on through the variable."""
SAMPLER_FALLBACK = "using parentbased_always_on"


def test_the_values_default_to_off_and_every_trace() -> None:
    assert resolve_telemetry({}) == TelemetrySettings(None, "dispatcher", "parentbased_always_on", 1.0)
    assert Settings().telemetry == TelemetrySettings() and not Settings().telemetry.enabled
    assert TelemetrySettings(otlp_endpoint=COLLECTOR).enabled
    assert TelemetrySettings().warnings == ()


def test_each_variable_fills_what_the_file_leaves_unset() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example.org/",
        "OTEL_SERVICE_NAME": "hooks-eu",
        "OTEL_TRACES_SAMPLER": "traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.125",
        "OTEL_EXPORTER_OTLP_PROTOCOL": " HTTP/Protobuf ",
        "OTEL_SDK_DISABLED": "false",
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
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://elsewhere:4318/v1/traces",
    }
    telemetry = resolve_telemetry(env, otlp_endpoint=COLLECTOR, service_name="hooks", sample_ratio=0.5)
    assert telemetry == TelemetrySettings(COLLECTOR, "hooks", "parentbased_traceidratio", 0.5)
    assert telemetry.warnings == ()


# --- a host application's own variables, while the dispatcher's telemetry is off ----------------

HOST = {
    "OTEL_SERVICE_NAME": "   ",
    "OTEL_TRACES_SAMPLER": "xray",
    "OTEL_TRACES_SAMPLER_ARG": "lots",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
}
"""What a host application may set for its own OpenTelemetry, none of it usable here."""


def test_while_off_the_other_variables_are_not_read() -> None:
    assert resolve_telemetry(HOST) == TelemetrySettings()
    for sampler in ("parentbased_jaeger_remote", "always_off", "traceidratio"):
        assert resolve_telemetry({**HOST, "OTEL_TRACES_SAMPLER": sampler}) == TelemetrySettings()


def test_while_off_the_file_s_own_keys_still_show() -> None:
    telemetry = resolve_telemetry(HOST, service_name="hooks", sample_ratio=0.5)
    assert telemetry == TelemetrySettings(None, "hooks", "parentbased_traceidratio", 0.5)


@pytest.mark.parametrize("value", ["true", "TRUE", " True "])
def test_sdk_disabled_turns_telemetry_off_whatever_the_file_says(value: str) -> None:
    env = {**HOST, "OTEL_SDK_DISABLED": value, "OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://c:4317"}
    assert resolve_telemetry(env) == TelemetrySettings()  # the endpoint is not read either
    assert resolve_telemetry(env, otlp_endpoint=COLLECTOR, service_name="hooks") == TelemetrySettings(
        None, "hooks"
    )
    env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "http://c:4318/v1/traces"
    assert resolve_telemetry(env).warnings == ()


@pytest.mark.parametrize("value", ["false", "FALSE", "", " "])
def test_sdk_disabled_false_or_empty_leaves_it_on(value: str) -> None:
    telemetry = resolve_telemetry({"OTEL_SDK_DISABLED": value}, otlp_endpoint=COLLECTOR)
    assert telemetry.enabled and telemetry.warnings == ()


@pytest.mark.parametrize("value", ["1", "yes", "maybe-31337", "on"])
def test_sdk_disabled_anything_else_is_not_disabled_and_never_an_error(value: str) -> None:
    """As OpenTelemetry says; telemetry on, that is said (1 or yes was likely meant as off)."""
    assert resolve_telemetry({"OTEL_SDK_DISABLED": value}) == TelemetrySettings()  # off: nothing said
    telemetry = resolve_telemetry({"OTEL_SDK_DISABLED": value}, otlp_endpoint=COLLECTOR)
    assert telemetry.enabled
    assert telemetry.warnings == ("OTEL_SDK_DISABLED: only true turns telemetry off; telemetry is on",)


# --- while on: what cannot be used falls back to the default, with one warning ------------------


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_is_taken(sampler: str) -> None:
    telemetry = resolve_telemetry({**ON, "OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": "0.5"})
    expected = 0.5 if sampler.endswith("traceidratio") else 1.0  # the argument only for a ratio
    assert (telemetry.sampler, telemetry.ratio, telemetry.warnings) == (sampler, expected, ())


def test_a_sampler_s_name_is_taken_in_any_case_and_its_argument_defaults_to_1() -> None:
    telemetry = resolve_telemetry({**ON, "OTEL_TRACES_SAMPLER": " ParentBased_TraceIdRatio "})
    assert (telemetry.sampler, telemetry.ratio) == ("parentbased_traceidratio", 1.0)


@pytest.mark.parametrize("arg", ["0", "1", "1.0", "0.25", "1e-3"])
def test_a_ratio_from_0_to_1(arg: str) -> None:
    env = {**ON, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": arg}
    assert resolve_telemetry(env).ratio == float(arg)


def test_an_argument_without_a_ratio_sampler_is_not_read() -> None:
    telemetry = resolve_telemetry({**ON, "OTEL_TRACES_SAMPLER_ARG": "lots"})
    assert (telemetry.sampler, telemetry.warnings) == ("parentbased_always_on", ())


def test_an_empty_variable_is_as_if_unset() -> None:
    names = ("OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SDK_DISABLED")
    assert resolve_telemetry({**ON, **{name: "" for name in names}}) == TelemetrySettings(COLLECTOR)
    assert resolve_telemetry({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) == TelemetrySettings()


@pytest.mark.parametrize(
    ("env", "fallback", "warning"),
    [
        ({"OTEL_TRACES_SAMPLER": "xray"}, {}, f"OTEL_TRACES_SAMPLER: xray is not supported here; {SAMPLER_FALLBACK}"),
        ({"OTEL_TRACES_SAMPLER": "parentbased_jaeger_remote"}, {}, f"OTEL_TRACES_SAMPLER: parentbased_jaeger_remote is not supported here; {SAMPLER_FALLBACK}"),
        ({"OTEL_TRACES_SAMPLER": " Jaeger_Remote "}, {}, f"OTEL_TRACES_SAMPLER: jaeger_remote is not supported here; {SAMPLER_FALLBACK}"),
        ({"OTEL_TRACES_SAMPLER": "sampler-31337 %"}, {}, f"OTEL_TRACES_SAMPLER: this sampler is not supported here; {SAMPLER_FALLBACK}"),
        ({"OTEL_TRACES_SAMPLER": "bad-\udcff-31337"}, {}, "OTEL_TRACES_SAMPLER: is not valid text: a lone surrogate \\udcff at character 5 (a bad \\u escape, or bytes that are not UTF-8); using parentbased_always_on"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "31337"}, {"sampler": "traceidratio"}, "OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1 (0.25 samples a quarter of the traces); using 1.0"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "-0.31337"}, {"sampler": "traceidratio"}, "OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1 (0.25 samples a quarter of the traces); using 1.0"),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half-31337"}, {"sampler": "parentbased_traceidratio"}, "OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1 (0.25 samples a quarter of the traces); using 1.0"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "nan"}, {"sampler": "traceidratio"}, "OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1 (0.25 samples a quarter of the traces); using 1.0"),
        ({"OTEL_SERVICE_NAME": "   "}, {}, "OTEL_SERVICE_NAME: must not be empty; using dispatcher"),
        ({"OTEL_SERVICE_NAME": "31337" * 52}, {}, "OTEL_SERVICE_NAME: must be at most 255 characters, got 260; using dispatcher"),
        ({"OTEL_SERVICE_NAME": "bad-\udcff-31337"}, {}, "OTEL_SERVICE_NAME: is not valid text: a lone surrogate \\udcff at character 5 (a bad \\u escape, or bytes that are not UTF-8); using dispatcher"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, {}, "OTEL_EXPORTER_OTLP_PROTOCOL: only OTLP over HTTP with protobuf is supported; set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf or leave it unset"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, {}, "OTEL_EXPORTER_OTLP_PROTOCOL: only OTLP over HTTP with protobuf is supported; set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf or leave it unset"),
    ],
)  # fmt: skip
def test_a_variable_that_cannot_be_used_is_the_default_and_one_warning(
    env: dict, fallback: dict, warning: str
) -> None:
    telemetry = resolve_telemetry({**ON, **env})
    assert telemetry == TelemetrySettings(COLLECTOR, **fallback, warnings=(warning,))
    assert "31337" not in warning and "\n" not in warning


def test_the_warnings_are_one_line_each_in_the_order_read() -> None:
    env = {**ON, **HOST, "OTEL_SDK_DISABLED": "1"}
    assert resolve_telemetry(env).warnings == (
        "OTEL_SDK_DISABLED: only true turns telemetry off; telemetry is on",
        "OTEL_EXPORTER_OTLP_PROTOCOL: only OTLP over HTTP with protobuf is supported; "
        "set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf or leave it unset",
        "OTEL_SERVICE_NAME: must not be empty; using dispatcher",
        f"OTEL_TRACES_SAMPLER: xray is not supported here; {SAMPLER_FALLBACK}",
    )


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("grpc://secret-31337:4317", "must be an http:// or https:// URL with a host, such as http://collector:4318"),
        ("secret-31337:4317", "is missing http:// or https:// in front: expected an http:// or https:// URL such as http://collector:4318"),
        ("http://u:pw-31337@c:4318", "must not carry credentials (user:password@): they would show wherever the URL is shown"),
        ("http://c:4318/?k=31337", "must not have a query (?) or a fragment (#): give the collector's base URL (/v1/traces and /v1/metrics are appended)"),
        ("http://c:4318/#31337", "must not have a query (?) or a fragment (#)"),
        ("http://c:31337x", "is not a valid URL"),
        (" http://c31337:4318", "must not contain control characters or line breaks, nor spaces at either end"),
        ("http://c31337:4318/v1/traces", "ends in /v1/traces, which the exporter appends: give the collector's base URL, without /v1/traces"),
        ("http://c31337:4318/otlp/v1/metrics/", "ends in /v1/metrics, which the exporter appends: give the collector's base URL, without /v1/metrics"),
    ],
)  # fmt: skip
def test_an_endpoint_variable_that_cannot_be_used_turns_telemetry_off_with_a_warning(
    endpoint: str, reason: str
) -> None:
    """A host's variable aimed at gRPC or anything else never stops dispatching; never quoted."""
    telemetry = resolve_telemetry({**HOST, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
    (warning,) = telemetry.warnings
    assert telemetry == TelemetrySettings(warnings=(warning,))  # off; the rest not read
    assert warning.startswith(f"OTEL_EXPORTER_OTLP_ENDPOINT: {reason}")
    assert warning.endswith("; telemetry is off")
    assert "31337" not in warning and "\n" not in warning


def test_a_traces_endpoint_alone_is_said_not_to_be_read() -> None:
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://secret-31337:4318/v1/traces"}
    said = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is not read; set OTEL_EXPORTER_OTLP_ENDPOINT to the collector's base URL"
    assert resolve_telemetry(env) == TelemetrySettings(warnings=(said,))
    assert resolve_telemetry({**env, "OTEL_EXPORTER_OTLP_ENDPOINT": ""}).warnings == (said,)
    # With the base URL from the variable or the file, it is simply not needed.
    assert resolve_telemetry({**env, **ON}) == TelemetrySettings(COLLECTOR)
    assert resolve_telemetry(env, otlp_endpoint=COLLECTOR) == TelemetrySettings(COLLECTOR)


# --- the loader --------------------------------------------------------------------------------


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
    sometimes = parse_settings({}, env={**ON, "OTEL_TRACES_SAMPLER": "sometimes"}).telemetry
    assert sometimes.warnings == (
        f"OTEL_TRACES_SAMPLER: sometimes is not supported here; {SAMPLER_FALLBACK}",
    )


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_TRACES_SAMPLER": "xray"},
        {"OTEL_SDK_DISABLED": "1"},
        {"OTEL_SERVICE_NAME": " "},
        {"OTEL_TRACES_SAMPLER": "parentbased_jaeger_remote"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://collector:4317", "OTEL_TRACES_SAMPLER": "xray"},
        {"OTEL_SDK_DISABLED": "maybe", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
    ],
)
def test_a_host_application_s_variables_never_stop_the_load(env: dict) -> None:
    """The review's cases: a host's own OpenTelemetry variables, the dispatcher's telemetry off."""
    settings = parse_settings({}, env={"DISPATCHER_REDIS_URL": "redis://127.0.0.1:6379/3", **env})
    assert settings.redis_url == "redis://127.0.0.1:6379/3"
    assert not settings.telemetry.enabled
