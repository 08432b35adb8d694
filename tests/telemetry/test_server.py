"""The HTTP API's server spans (``dispatcher/telemetry/server.py``), exported to a real OTLP/HTTP
collector: a child of the caller's W3C ``traceparent`` or a root (a caller's ``tracestate`` never
read, so never exported or passed on), current while the request runs, named by its route's
template; and through the real API app, the caller's trace going on into the ``dispatch`` span
and the job that carries it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from dispatcher import queue, telemetry
from dispatcher.runtime import Runtime
from dispatcher.telemetry import providers, server_span
from dispatcher.telemetry.spans import dispatch_traces
from tests.api.conftest import Api, example
from tests.otlp_receiver import OtlpReceiver, Span
from tests.telemetry.conftest import ERROR, SERVER, UNSET, carried, exported, ids, only
from tests.telemetry.test_spans import STATE

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{CALLER}-01"
ENDPOINTS = [
    {"name": "partner-a", "url": "http://127.0.0.1:9/a", "events": ["*"], "key": "partner-a-key-31337"},
    {"name": "partner-b", "url": "http://127.0.0.1:9/b", "events": ["order_changed"]},
]


def test_with_a_traceparent_the_server_span_is_the_callers_child(traced: OtlpReceiver) -> None:
    with server_span("POST", {"traceparent": TRACEPARENT}) as span:
        span.answered(202, "/v1/events")

    got = only(exported(traced), "POST /v1/events")
    assert (got.kind, got.trace_id, got.parent_span_id, got.status_code) == (SERVER, TRACE, CALLER, UNSET)
    assert got.attributes == {
        "http.request.method": "POST",
        "http.response.status_code": 202,
        "http.route": "/v1/events",
    }


def test_a_callers_tracestate_is_not_read_so_no_span_exports_it(traced: OtlpReceiver) -> None:
    """The server span given a ``tracestate`` exports none, nor does the dispatch made under it,
    whose carrier is its traceparent alone."""
    with server_span("POST", {"traceparent": TRACEPARENT, "tracestate": STATE}) as span:
        assert not span.span.get_span_context().trace_state
        traces = dispatch_traces({0: "order_changed"})
        assert traces is not None
        context = traces.carrier(0) or ""
        traces.end({0: 1})
        span.answered(202, "/v1/events")

    got = exported(traced)
    server, dispatch = only(got, "POST /v1/events"), only(got, "dispatch")
    assert (server.trace_id, server.parent_span_id) == (TRACE, CALLER)
    assert (dispatch.trace_id, dispatch.parent_span_id) == (TRACE, server.span_id)
    assert "\n" not in context and carried(context) == ids(dispatch)
    assert b"s3cret-state" not in traced.all_bytes()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": "garbage"},
        {"authorization": "Bearer dsp_x"},
        {"Traceparent": "00-zz-zz-01"},
        {"tracestate": STATE},
        {"traceparent": "", "tracestate": STATE},
    ],
)
def test_without_a_valid_traceparent_it_is_a_root(traced: OtlpReceiver, headers: dict[str, str]) -> None:
    with server_span("GET", headers) as span:
        span.answered(200, "/v1/deliveries/{request_id}")

    got = only(exported(traced), "GET /v1/deliveries/{request_id}")
    assert got.parent_span_id == "" and got.kind == SERVER
    assert b"dsp_x" not in traced.all_bytes() and b"s3cret-state" not in traced.all_bytes()


def test_the_server_span_is_current_inside_the_block(traced: OtlpReceiver) -> None:
    with server_span("POST", {"traceparent": TRACEPARENT}) as span:
        traces = dispatch_traces({0: "order_changed"})
        assert traces is not None
        traces.end({0: 1})
        span.answered(202, "/v1/events")

    got = exported(traced)
    server, dispatch = only(got, "POST /v1/events"), only(got, "dispatch")
    assert (dispatch.trace_id, dispatch.parent_span_id) == (TRACE, server.span_id)


def test_an_answer_without_a_route_keeps_the_method_as_its_name(traced: OtlpReceiver) -> None:
    with server_span("GET", {}) as span:
        span.answered(404, None)

    got = only(exported(traced), "GET")
    assert got.status_code == UNSET  # a client's mistake is not the server's error
    assert got.attributes == {"http.request.method": "GET", "http.response.status_code": 404}


def test_a_5xx_answer_is_an_error_by_its_status(traced: OtlpReceiver) -> None:
    with server_span("POST", {}) as span:
        span.answered(503, "/v1/events")

    got = only(exported(traced), "POST /v1/events")
    assert got.status_code == ERROR and got.attributes["error.type"] == "503"


def test_an_exception_in_the_request_ends_the_span_without_its_words(traced: OtlpReceiver) -> None:
    with pytest.raises(RuntimeError), server_span("POST", {}) as span:
        try:
            raise RuntimeError("patient Jane Doe, DOB 1970-01-01")
        finally:
            span.answered(500, "/v1/events")

    got = only(exported(traced), "POST /v1/events")
    assert got.status_code == ERROR and got.attributes["error.type"] == "500"
    assert b"Jane" not in traced.all_bytes() and b"RuntimeError" not in traced.all_bytes()


def test_while_off_the_span_does_nothing() -> None:
    assert not telemetry.enabled()
    with server_span("POST", {"traceparent": TRACEPARENT}) as span:
        assert span.span is None
        span.answered(500, "/v1/events")  # nothing to set, nothing raised
        assert telemetry.current_context() is None


def _api(make_runtime: Callable[..., Runtime], collector: OtlpReceiver) -> Api:
    """The API of a runtime whose ``telemetry:`` is the one configured (installing the runtime
    configures telemetry again with equal settings: the same providers)."""
    tracer = providers.tracer()
    runtime = make_runtime(endpoints=ENDPOINTS, telemetry={"otlp_endpoint": collector.url})
    assert providers.tracer() is tracer
    return Api(runtime)


def _job_carries(runtime: Runtime, request_id: str, dispatch: Span) -> None:
    (context, last) = queue.traces(runtime.queue, [request_id])[request_id]
    assert context is not None and "\n" not in context  # its traceparent alone
    assert carried(context) == ids(dispatch) and last is None


def test_an_api_request_continues_the_callers_trace_into_dispatch_and_its_jobs(
    traced: OtlpReceiver, make_runtime: Callable[..., Runtime], redis_client: redis.Redis
) -> None:
    """The caller's ``traceparent`` goes on; its ``tracestate`` goes nowhere: not into a span,
    not into the jobs (whose contexts a partner may be sent)."""
    api = _api(make_runtime, traced)
    try:
        response = api.call(
            "POST",
            "/v1/events",
            json={"event": "order_changed", "data": example()},
            headers={"traceparent": TRACEPARENT, "tracestate": STATE},
        )
    finally:
        api.close()
    assert response.status_code == 202

    got = exported(traced)
    server, dispatch = only(got, "POST /v1/events"), only(got, "dispatch")
    assert (server.kind, server.trace_id, server.parent_span_id) == (SERVER, TRACE, CALLER)
    assert server.attributes["http.response.status_code"] == 202
    assert (dispatch.trace_id, dispatch.parent_span_id) == (TRACE, server.span_id)
    assert dispatch.attributes == {"webhook.event": "order_changed", "webhook.deliveries": 2}
    for delivery in response.json()["deliveries"]:
        _job_carries(api.runtime, delivery["request_id"], dispatch)
    assert b"s3cret-state" not in traced.all_bytes()


def test_a_batch_makes_one_dispatch_span_per_event_under_the_request(
    traced: OtlpReceiver, make_runtime: Callable[..., Runtime], redis_client: redis.Redis
) -> None:
    api = _api(make_runtime, traced)
    events = [
        {"event": "order_changed", "data": example(), "endpoints": ["partner-b"]},
        {"event": "prescription_submitted", "data": example("prescription_submitted")},
    ]
    try:
        response = api.call("POST", "/v1/events/batch", json={"events": events})
    finally:
        api.close()
    assert response.status_code == 202, response.text

    got = exported(traced)
    server = only(got, "POST /v1/events/batch")
    assert server.parent_span_id == ""  # no traceparent: the request starts the trace
    dispatches = {s.attributes["webhook.event"]: s for s in got if s.name == "dispatch"}
    assert {e: (s.trace_id, s.parent_span_id) for e, s in dispatches.items()} == {
        "order_changed": (server.trace_id, server.span_id),
        "prescription_submitted": (server.trace_id, server.span_id),
    }


def test_a_refused_request_is_named_by_its_route_and_dispatches_nothing(
    traced: OtlpReceiver, make_runtime: Callable[..., Runtime], redis_client: redis.Redis
) -> None:
    api = _api(make_runtime, traced)
    try:
        unauthorized = api.call("POST", "/v1/events", token=None, json={"event": "order_changed"})
        unknown = api.call("GET", "/v1/nowhere", headers={"traceparent": TRACEPARENT})
    finally:
        api.close()
    assert (unauthorized.status_code, unknown.status_code) == (401, 404)

    got = exported(traced)
    refused = only(got, "POST /v1/events")
    assert refused.attributes["http.response.status_code"] == 401 and refused.status_code == UNSET
    nowhere = only(got, "GET")
    assert nowhere.parent_span_id == CALLER and nowhere.attributes["http.response.status_code"] == 404
    assert [s for s in got if s.name == "dispatch"] == []


def test_a_method_the_api_does_not_know_is_not_written_into_the_trace(
    traced: OtlpReceiver, make_runtime: Callable[..., Runtime], redis_client: redis.Redis
) -> None:
    """The method is the client's text, sent before any token is checked: an unknown one goes out
    as OpenTelemetry's ``_OTHER`` (HTTP semantic conventions), not as whatever was sent."""
    api = _api(make_runtime, traced)
    try:
        response = api.call("PATIENT-JANE-DOE", "/v1/events", token=None)
    finally:
        api.close()
    assert response.status_code == 405

    (server,) = [s for s in exported(traced) if s.kind == SERVER]
    assert server.attributes["http.response.status_code"] == 405
    assert b"JANE" not in traced.all_bytes()
