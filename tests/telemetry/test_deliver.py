"""A worker's spans (``dispatcher/telemetry/deliver.py``), exported to a real OTLP/HTTP collector:
``deliver`` per attempt -- a child of the ``dispatch`` span its job carries (without one, of the
attempt before), linked to the attempt before -- and ``POST`` inside it, the HTTP client span
(``url.full`` with its path redacted), which alone puts a ``traceparent`` on the partner's
request, only when asked, and never a caller's ``tracestate``."""

from __future__ import annotations

import pytest

from dispatcher import telemetry
from dispatcher.telemetry import DeliverSpan, providers, spans, start_deliver
from dispatcher.telemetry.spans import dispatch_traces
from tests.otlp_receiver import OtlpReceiver, Span
from tests.telemetry.conftest import CLIENT, CONSUMER, ERROR, UNSET, ProcessLog, carried, exported, ids, only
from tests.telemetry.test_spans import STATE, with_state

URL = "https://clinic:pa55word@partner.example:8443/hooks/in?token=t0ken-in-query#frag"
TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"


def dispatched() -> str:
    """A ``dispatch`` span's context, as its job carries it (the span ended)."""
    traces = dispatch_traces({0: "order_changed"})
    assert traces is not None
    context = traces.carrier(0)
    traces.end({0: 1})
    assert context
    return context


def deliver(dispatch: str | None, previous: str | None = None, attempt: int = 1) -> DeliverSpan:
    span = start_deliver(dispatch, previous, request_id="req-1", endpoint="pharmacy", attempt=attempt)
    assert span is not None
    return span


def by_attempt(spans: list[Span]) -> dict[int, Span]:
    return {s.attributes["webhook.attempt"]: s for s in spans if s.name == "deliver"}


def test_nothing_starts_while_off() -> None:
    assert not telemetry.enabled()
    assert (
        start_deliver("00-" + TRACE + "-" + SPAN + "-01", None, request_id="r", endpoint="e", attempt=1)
        is None
    )


def test_a_deliver_span_is_a_consumer_child_of_the_dispatch_its_job_carries(traced: OtlpReceiver) -> None:
    context = dispatched()
    span = deliver(context)
    span.end("delivered")

    got = exported(traced)
    dispatch, delivered = only(got, "dispatch"), only(got, "deliver")
    assert carried(context) == ids(dispatch)
    assert (delivered.trace_id, delivered.parent_span_id, delivered.kind) == (
        dispatch.trace_id,
        dispatch.span_id,
        CONSUMER,
    )
    assert delivered.links == [] and delivered.status_code == UNSET
    assert delivered.attributes == {
        "webhook.request_id": "req-1",
        "webhook.endpoint": "pharmacy",
        "webhook.attempt": 1,
        "webhook.retry": False,
        "webhook.outcome": "delivered",
    }


def test_a_retry_is_linked_to_the_attempt_before_in_the_same_trace(traced: OtlpReceiver) -> None:
    context = dispatched()
    first = deliver(context)
    previous = first.carrier()
    first.end("retry_scheduled")
    second = deliver(context, previous, attempt=2)
    second.end("failed")

    got = exported(traced)
    attempts = by_attempt(got)
    dispatch = only(got, "dispatch")
    assert carried(previous) == ids(attempts[1])
    assert attempts[2].links == [(attempts[1].trace_id, attempts[1].span_id)]
    assert attempts[2].parent_span_id == attempts[1].parent_span_id == dispatch.span_id
    assert attempts[1].attributes["webhook.outcome"] == "retry_scheduled"
    assert attempts[1].attributes["webhook.retry"] is False and attempts[1].status_code == UNSET
    assert attempts[2].attributes["webhook.retry"] is True and attempts[2].attributes["webhook.attempt"] == 2
    assert attempts[2].attributes["webhook.outcome"] == "failed" and attempts[2].status_code == ERROR


def test_without_a_carrier_the_attempt_starts_a_trace_of_its_own(traced: OtlpReceiver) -> None:
    """A job queued by reconcile, or dispatched while telemetry was off: a root span, whatever
    span is current on the sender thread."""
    tracer = providers.tracer()
    assert tracer is not None
    with tracer.start_as_current_span("unrelated"):
        span = deliver(None)
    span.end("delivered")

    got = exported(traced)
    delivered = only(got, "deliver")
    assert delivered.parent_span_id == "" and delivered.trace_id != only(got, "unrelated").trace_id


def test_without_a_dispatch_the_attempts_share_the_first_ones_trace(traced: OtlpReceiver) -> None:
    """A job with no dispatch context (dispatched untraced, made again by reconcile): each later
    attempt is a child of the one before, in its trace, and linked to it."""
    span = deliver(None, f"00-{TRACE}-{SPAN}-01", attempt=3)
    span.end("retry_scheduled")

    delivered = only(exported(traced), "deliver")
    assert (delivered.trace_id, delivered.parent_span_id) == (TRACE, SPAN)
    assert delivered.links == [(TRACE, SPAN)]


def test_without_a_dispatch_each_attempt_is_the_child_of_the_one_before(traced: OtlpReceiver) -> None:
    """Three attempts of a job that carries no dispatch context, each handed the one before's
    carrier as the worker keeps it: one trace, rooted at the first attempt, a chain of children."""
    previous = None
    for attempt in (1, 2, 3):
        span = deliver(None, previous, attempt=attempt)
        previous = span.carrier()
        span.end("retry_scheduled")

    attempts = by_attempt(exported(traced))
    assert attempts[1].parent_span_id == "" and attempts[1].links == []
    for later in (2, 3):
        before = attempts[later - 1]
        assert (attempts[later].trace_id, attempts[later].parent_span_id) == (before.trace_id, before.span_id)
        assert attempts[later].links == [(before.trace_id, before.span_id)]


def test_post_is_a_client_child_of_deliver_with_the_http_conventions_and_no_secret(
    traced: OtlpReceiver,
) -> None:
    span = deliver(dispatched())
    with span.post(URL, None) as http:
        http.result(200, None)
    span.end("delivered")

    got = exported(traced)
    post, delivered = only(got, "POST"), only(got, "deliver")
    assert (post.kind, post.trace_id, post.parent_span_id) == (CLIENT, delivered.trace_id, delivered.span_id)
    assert post.status_code == UNSET
    assert post.attributes == {
        "http.request.method": "POST",
        "server.address": "partner.example",
        "server.port": 8443,
        "url.full": "https://partner.example:8443/REDACTED",
        "http.response.status_code": 200,
    }
    sent = traced.all_bytes()
    for secret in (b"pa55word", b"clinic", b"t0ken-in-query", b"frag", b"hooks"):
        assert secret not in sent


@pytest.mark.parametrize(
    ("status", "failure", "error"),
    [
        (404, None, "404"),
        (503, None, "503"),
        (None, "timeout", "timeout"),
        (None, "connection_error", "connection_error"),
        (500, "response_too_large", "response_too_large"),
    ],
)
def test_a_post_that_failed_says_its_kind_or_status_never_its_words(
    traced: OtlpReceiver, status: int | None, failure: str | None, error: str
) -> None:
    span = deliver(dispatched())
    with span.post("http://partner.example/hooks", None) as http:
        http.result(status, failure)
    span.end("retry_scheduled")

    post = only(exported(traced), "POST")
    assert post.status_code == ERROR
    assert post.attributes["error.type"] == error
    assert post.attributes.get("http.response.status_code") == status
    assert (post.attributes["server.address"], post.attributes["server.port"]) == ("partner.example", 80)


def test_a_post_that_raised_still_ends_its_span(traced: OtlpReceiver) -> None:
    span = deliver(dispatched())
    with pytest.raises(ConnectionResetError), span.post("https://partner.example/hooks", None):
        raise ConnectionResetError("reset by peer")
    span.end("retry_scheduled")

    post = only(exported(traced), "POST")
    assert "http.response.status_code" not in post.attributes and "error.type" not in post.attributes


def test_post_puts_its_own_traceparent_in_the_headers_given(traced: OtlpReceiver) -> None:
    span = deliver(dispatched())
    headers = {"Content-Type": "application/json"}
    with span.post(URL, headers) as http:
        http.result(202, None)
    span.end("delivered")

    post = only(exported(traced), "POST")
    assert set(headers) == {"Content-Type", "traceparent"}
    assert carried(headers["traceparent"]) == ids(post)


def test_a_callers_tracestate_reaches_neither_the_partner_nor_the_collector(traced: OtlpReceiver) -> None:
    """An API request's context with a ``tracestate`` as the dispatch's parent: the partner's
    headers get the POST's ``traceparent`` alone, and no exported byte holds the state."""
    traces = dispatch_traces({0: "order_changed"}, [with_state()])
    assert traces is not None
    context = traces.carrier(0)
    traces.end({0: 1})
    span = deliver(context)
    headers: dict[str, str] = {}
    with span.post(URL, headers):
        pass
    span.end("delivered")

    got = exported(traced)
    post = only(got, "POST")
    assert {s.trace_id for s in got} == {TRACE} and only(got, "dispatch").parent_span_id == SPAN
    assert list(headers) == ["traceparent"] and carried(headers["traceparent"]) == ids(post)
    assert b"s3cret-state" not in traced.all_bytes()


def test_a_jobs_old_carrier_with_a_tracestate_line_passes_none_on(traced: OtlpReceiver) -> None:
    """A job queued before tracestate was dropped: its contexts' second lines are not read."""
    first = deliver(f"00-{TRACE}-{SPAN}-01\n{STATE}")
    previous = f"{first.carrier()}\n{STATE}"
    first.end("retry_scheduled")
    second = deliver(f"00-{TRACE}-{SPAN}-01\n{STATE}", previous, attempt=2)
    headers: dict[str, str] = {}
    with second.post(URL, headers):
        pass
    second.end("delivered")

    got = exported(traced)
    attempts, post = by_attempt(got), only(got, "POST")
    assert attempts[2].parent_span_id == SPAN and attempts[2].links == [
        (attempts[1].trace_id, attempts[1].span_id)
    ]
    assert list(headers) == ["traceparent"] and carried(headers["traceparent"]) == ids(post)
    assert b"s3cret-state" not in traced.all_bytes()


def test_post_without_headers_is_traced_all_the_same(traced: OtlpReceiver) -> None:
    span = deliver(dispatched())
    with span.post(URL, None) as http:
        http.result(200, None)
    span.end("delivered")

    post = only(exported(traced), "POST")
    assert post.attributes["url.full"] == "https://partner.example:8443/REDACTED"


def test_a_deliver_span_that_cannot_be_ended_is_dropped_quietly(
    traced: OtlpReceiver, process_log: ProcessLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spans, "_warned", set())
    span = deliver(dispatched())
    span.end("delivered")
    span.end("delivered")  # ended twice: the SDK warns, the flow goes on

    assert len([s for s in exported(traced) if s.name == "deliver"]) == 1
    broken = DeliverSpan(span=None)
    broken.end("delivered")  # no span at all: nothing raises
    assert broken.carrier() == ""  # no context to carry
    assert process_log.lines("span dropped") == ["telemetry: span dropped at=end error=AttributeError"]


def test_an_event_its_dispatcher_did_not_sample_builds_no_deliver_span(collector: OtlpReceiver) -> None:
    """Under a ``parentbased_*`` sampler an unsampled dispatch (flags 00) makes no span at all,
    nor does a later attempt of it; a sampler that decides alone still traces the attempt."""
    from tests.telemetry.conftest import settings_for

    unsampled = f"00-{TRACE}-{SPAN}-00"
    telemetry.configure(settings_for(collector))  # parentbased_always_on
    assert start_deliver(unsampled, None, request_id="r-1", endpoint="e", attempt=1) is None
    assert start_deliver(None, unsampled, request_id="r-1", endpoint="e", attempt=2) is None
    assert start_deliver(f"00-{TRACE}-{SPAN}-01", None, request_id="r-1", endpoint="e", attempt=1) is not None

    telemetry.configure(settings_for(collector, sampler="always_on"))
    alone = start_deliver(unsampled, None, request_id="r-2", endpoint="e", attempt=1)
    assert alone is not None
    alone.end("delivered")
    got = only(exported(collector), "deliver")
    assert (got.trace_id, got.parent_span_id) == (TRACE, SPAN)
    assert got.attributes["webhook.request_id"] == "r-2"
