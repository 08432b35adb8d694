"""The spans of an event's trace (``dispatcher/telemetry/spans.py``), exported to a real OTLP/HTTP
collector: the one list of attribute names, a context as the text a job carries, the ``dispatch``
spans and their parents, and hooks that never raise into the flow."""

from __future__ import annotations

import copy
import logging

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from dispatcher import CATALOGUE, dispatch, queue, telemetry
from dispatcher.errors import StoreUnavailable
from dispatcher.runtime import Runtime
from dispatcher.store.schema import DELIVERIES
from dispatcher.telemetry import providers, spans
from dispatcher.telemetry.spans import (
    ATTRIBUTES,
    attributes,
    carrier,
    context_of,
    dispatch_traces,
    quiet,
    without_state,
)
from tests.otlp_receiver import OtlpReceiver
from tests.telemetry.conftest import ERROR, PRODUCER, UNSET, ProcessLog, carried, exported, ids, only

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
STATE = "vendor=s3cret-state,rojo=00f067aa0ba902b7"
"""A caller's W3C ``tracestate``: never in a carrier, a partner's headers or an exported span."""


def with_state(traceparent: str = f"00-{TRACE}-{SPAN}-01", state: str = STATE) -> Context:
    """A caller's context holding a ``tracestate``, as OpenTelemetry's own propagator reads one
    (the host application's current span; an API client's headers read by another library)."""
    return TraceContextTextMapPropagator().extract({"traceparent": traceparent, "tracestate": state})


def example(event: str) -> dict:
    return copy.deepcopy(CATALOGUE[event].example())


def tracer() -> trace.Tracer:
    made = providers.tracer()
    assert made is not None
    return made


def test_attributes_drops_none_and_refuses_a_name_outside_the_list() -> None:
    given = {
        "webhook.event": "order_changed",
        "webhook.attempt": 2,
        "webhook.retry": True,
        "error.type": None,
    }
    assert attributes(given) == {
        "webhook.event": "order_changed",
        "webhook.attempt": 2,
        "webhook.retry": True,
    }
    assert attributes({}) == {}
    for name in ("webhook.payload", "http.response.body", "exception.message", "WEBHOOK.EVENT"):
        with pytest.raises(ValueError, match=f"span attribute '{name}' is not in telemetry.spans.ATTRIBUTES"):
            attributes({"webhook.event": "order_changed", name: None})  # refused even when None


def test_the_list_names_no_payload_answer_message_or_secret() -> None:
    for word in ("body", "payload", "message", "key", "secret", "token", "header", "reason", "data"):
        assert not [name for name in ATTRIBUTES if word in name], word


def test_a_carrier_is_the_spans_traceparent_and_reads_back(traced: OtlpReceiver) -> None:
    span = tracer().start_span("job")
    text = carrier(span)
    span.end()

    exported_span = only(exported(traced), "job")
    assert "\n" not in text and carried(text) == ids(exported_span)
    back = trace.get_current_span(context_of(text)).get_span_context()
    assert (format(back.trace_id, "032x"), format(back.span_id, "016x")) == (
        exported_span.trace_id,
        exported_span.span_id,
    )
    assert back.is_remote and back.trace_flags.sampled


def test_a_carrier_is_never_a_tracestate_even_when_the_span_has_one(traced: OtlpReceiver) -> None:
    """A span whose parent holds a caller's ``tracestate`` (the SDK copies it into the child):
    its carrier -- what a job keeps and a partner may be sent -- is the traceparent alone."""
    span = tracer().start_span("job", context=with_state())
    assert span.get_span_context().trace_state  # the SDK's span has it...
    text = carrier(span)
    span.end()

    assert "\n" not in text and "s3cret-state" not in text  # ...its carrier does not
    assert carried(text) == ids(only(exported(traced), "job"))
    assert only(traced.snapshot(), "job").trace_id == TRACE


def test_context_of_and_context_from_headers_read_the_traceparent_alone() -> None:
    """A job written before tracestate was dropped (a second line), a client's ``tracestate``
    header: the context holds the traceparent's ids and no state."""
    read = {
        "carrier": context_of(f"00-{TRACE}-{SPAN}-01\n{STATE}"),
        "headers": spans.context_from_headers({"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": STATE}),
    }
    for how, context in read.items():
        back = trace.get_current_span(context).get_span_context()
        assert (format(back.trace_id, "032x"), format(back.span_id, "016x")) == (TRACE, SPAN), how
        assert back.is_remote and back.trace_flags.sampled, how
        assert not back.trace_state and dict(back.trace_state) == {}, how
    assert spans.context_from_headers({"tracestate": STATE}) is None  # a state alone is no parent
    assert spans.context_from_headers({}) is None


def test_without_state_keeps_the_parents_ids_and_flags_and_drops_its_state() -> None:
    bare = trace.get_current_span(without_state(with_state())).get_span_context()
    assert (format(bare.trace_id, "032x"), format(bare.span_id, "016x")) == (TRACE, SPAN)
    assert bare.is_remote and bare.trace_flags.sampled and not bare.trace_state

    plain = context_of(f"00-{TRACE}-{SPAN}-01")
    assert without_state(plain) is plain  # nothing to drop: the context as it was
    token = otel_context.attach(with_state())
    try:
        current = trace.get_current_span(without_state(None)).get_span_context()
    finally:
        otel_context.detach(token)
    assert format(current.span_id, "016x") == SPAN and not current.trace_state


@pytest.mark.parametrize(
    "text",
    [None, "", "garbage", f"00-{'0' * 32}-{SPAN}-01", f"00-{TRACE}-{'0' * 16}-01", f"\n{STATE}"],
)
def test_a_carrier_that_holds_no_valid_context_is_none(text: str | None) -> None:
    assert context_of(text) is None


def test_dispatch_traces_is_none_while_off() -> None:
    assert not telemetry.enabled()
    assert dispatch_traces({0: "order_changed"}) is None


def test_dispatch_spans_are_producers_children_of_the_current_span_ended_with_their_counts(
    traced: OtlpReceiver,
) -> None:
    with tracer().start_as_current_span("caller"):
        traces = dispatch_traces({0: "order_changed", 1: "prescription_submitted"})
    assert traces is not None
    carriers = {item: traces.carrier(item) for item in (0, 1)}
    traces.end({0: 2})

    got = exported(traced)
    caller = only(got, "caller")
    dispatches = {s.attributes["webhook.event"]: s for s in got if s.name == "dispatch"}
    assert set(dispatches) == {"order_changed", "prescription_submitted"}
    for span in dispatches.values():
        assert (span.kind, span.trace_id, span.parent_span_id) == (PRODUCER, caller.trace_id, caller.span_id)
        assert span.status_code == UNSET and "error.type" not in span.attributes
    assert dispatches["order_changed"].attributes["webhook.deliveries"] == 2
    assert dispatches["prescription_submitted"].attributes["webhook.deliveries"] == 0
    assert carried(carriers[0] or "") == ids(dispatches["order_changed"])
    assert carried(carriers[1] or "") == ids(dispatches["prescription_submitted"])
    assert traces.carrier(7) is None


def test_a_dispatch_span_is_a_child_of_its_items_parent_when_given(traced: OtlpReceiver) -> None:
    """An API request's context, handed over to the thread that stores: the item's own parent wins
    over the current span; an item without one (None, or past the list) takes the current span."""
    remote = context_of(f"00-{TRACE}-{SPAN}-01")
    with tracer().start_as_current_span("caller"):
        traces = dispatch_traces({0: "order_changed", 1: "order_changed", 2: "order_changed"}, [remote, None])
    assert traces is not None
    traces.end({0: 1, 1: 1, 2: 1})

    got = exported(traced)
    caller = only(got, "caller")
    parents = sorted((s.trace_id, s.parent_span_id) for s in got if s.name == "dispatch")
    assert parents == sorted(
        [(TRACE, SPAN), (caller.trace_id, caller.span_id), (caller.trace_id, caller.span_id)]
    )


def test_a_dispatch_span_never_inherits_a_callers_tracestate(traced: OtlpReceiver) -> None:
    """The current span (the host application's) and an item's parent (an API request's) both
    hold a ``tracestate``: each dispatch span is their child, and neither its carrier nor any
    exported byte holds the state."""
    other = "4bf92f3577b34da6a3ce929d0e0e4736"
    token = otel_context.attach(with_state())
    try:
        traces = dispatch_traces(
            {0: "order_changed", 1: "order_changed"}, [with_state(f"00-{other}-{SPAN}-01")]
        )
    finally:
        otel_context.detach(token)
    assert traces is not None
    carriers = [traces.carrier(0) or "", traces.carrier(1) or ""]
    traces.end({0: 1, 1: 1})

    got = [s for s in exported(traced) if s.name == "dispatch"]
    assert sorted((s.trace_id, s.parent_span_id) for s in got) == sorted([(other, SPAN), (TRACE, SPAN)])
    assert all(text and "\n" not in text for text in carriers)
    assert sorted(carried(text) for text in carriers) == sorted(ids(s) for s in got)
    sent = traced.all_bytes()
    assert b"s3cret-state" not in sent and b"rojo" not in sent


def test_a_dispatch_span_without_a_current_span_starts_a_trace(traced: OtlpReceiver) -> None:
    traces = dispatch_traces({0: "order_changed"})
    assert traces is not None
    traces.end({0: 1})

    span = only(exported(traced), "dispatch")
    assert span.parent_span_id == "" and span.attributes == {
        "webhook.event": "order_changed",
        "webhook.deliveries": 1,
    }


def test_a_failed_dispatch_ends_its_spans_with_the_errors_type_only(traced: OtlpReceiver) -> None:
    traces = dispatch_traces({0: "order_changed", 1: "order_changed"})
    assert traces is not None
    traces.end({}, "StoreUnavailable")

    got = [s for s in exported(traced) if s.name == "dispatch"]
    assert len(got) == 2
    for span in got:
        assert span.status_code == ERROR
        assert span.attributes == {
            "webhook.event": "order_changed",
            "webhook.deliveries": 0,
            "error.type": "StoreUnavailable",
        }


def test_a_hook_that_raises_returns_its_default_and_logs_one_line(
    process_log: ProcessLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spans, "_warned", set())
    calls = []

    @quiet("fallback")
    def hook_for_the_test(value: str) -> str:
        calls.append(value)
        raise RuntimeError(f"patient Jane Doe {value}")

    assert hook_for_the_test("first") == "fallback"
    assert hook_for_the_test("second") == "fallback"  # a second failure: no second line

    assert calls == ["first", "second"]
    assert process_log.lines() == ["telemetry: span dropped at=hook_for_the_test error=RuntimeError"]
    assert process_log.levels() == [logging.WARNING]
    assert hook_for_the_test.__name__ == "hook_for_the_test"


def test_a_hook_that_works_returns_its_value_and_logs_nothing(process_log: ProcessLog) -> None:
    @quiet(None)
    def working_hook(value: int) -> int:
        return value * 2

    assert working_hook(21) == 42
    assert process_log.lines() == []


# --- through dispatch() --------------------------------------------------------------------------

PARTNERS = [
    {"name": "pharmacy", "url": "http://127.0.0.1:9/a", "key": "k3y-spans-31337", "events": ["*"]},
    {"name": "lab", "url": "http://127.0.0.1:9/b", "events": ["order_changed"]},
]


def traced_runtime(make_runtime, collector: OtlpReceiver, **given) -> Runtime:
    """A runtime whose ``telemetry:`` is the one configured: installing it keeps the providers."""
    runtime = make_runtime(endpoints=PARTNERS, telemetry={"otlp_endpoint": collector.url}, **given)
    assert telemetry.enabled()
    return runtime


def test_dispatch_inside_the_callers_span_is_its_child_and_each_job_carries_it(
    traced: OtlpReceiver, make_runtime
) -> None:
    runtime = traced_runtime(make_runtime, traced)
    with tracer().start_as_current_span("caller"):
        request_ids = dispatch("order_changed", example("order_changed"))

    got = exported(traced)
    caller, span = only(got, "caller"), only(got, "dispatch")
    assert (span.trace_id, span.parent_span_id, span.kind) == (caller.trace_id, caller.span_id, PRODUCER)
    assert span.attributes == {"webhook.event": "order_changed", "webhook.deliveries": 2}
    carried_by_jobs = queue.traces(runtime.queue, request_ids)
    assert len(carried_by_jobs) == 2
    for context, last in carried_by_jobs.values():
        assert context is not None and carried(context) == ids(span) and last is None
    assert b"k3y-spans-31337" not in traced.all_bytes()


def test_dispatch_under_a_caller_with_a_tracestate_carries_none_and_exports_none(
    traced: OtlpReceiver, make_runtime
) -> None:
    runtime = traced_runtime(make_runtime, traced)
    token = otel_context.attach(with_state())
    try:
        request_ids = dispatch("order_changed", example("order_changed"))
    finally:
        otel_context.detach(token)

    span = only(exported(traced), "dispatch")
    assert (span.trace_id, span.parent_span_id) == (TRACE, SPAN)
    carried_by_jobs = queue.traces(runtime.queue, request_ids)
    assert len(carried_by_jobs) == 2
    for context, _last in carried_by_jobs.values():
        assert context is not None and "\n" not in context and carried(context) == ids(span)
    assert b"s3cret-state" not in traced.all_bytes()


def test_a_database_refusing_the_insert_ends_the_dispatch_span_as_an_error(
    traced: OtlpReceiver, make_runtime
) -> None:
    runtime = traced_runtime(make_runtime, traced)
    assert dispatch("order_changed", example("order_changed"))  # the schema is made
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TRIGGER refuse BEFORE INSERT ON {DELIVERIES.name} "
            "BEGIN SELECT RAISE(ABORT, 'disk quota of patient Jane Doe'); END"
        )

    with pytest.raises(StoreUnavailable):
        dispatch("prescription_submitted", example("prescription_submitted"))

    spans = {s.attributes["webhook.event"]: s for s in exported(traced) if s.name == "dispatch"}
    assert spans["order_changed"].status_code == UNSET
    assert spans["prescription_submitted"].status_code == ERROR
    assert spans["prescription_submitted"].attributes == {
        "webhook.event": "prescription_submitted",
        "webhook.deliveries": 0,
        "error.type": "IntegrityError",
    }
    assert b"Jane" not in traced.all_bytes()


def test_redis_refusing_the_jobs_ends_the_dispatch_span_as_stored(traced: OtlpReceiver, make_runtime) -> None:
    """The deliveries are stored and reconcile queues them: the dispatch did not fail."""
    traced_runtime(make_runtime, traced, redis_url="redis://127.0.0.1:1/0")

    assert len(dispatch("order_changed", example("order_changed"))) == 2

    span = only(exported(traced), "dispatch")
    assert span.status_code == UNSET and span.attributes["webhook.deliveries"] == 2
