"""A worker's part of an event's trace (``dispatcher/worker/tracing.py``), with real Redis and a
real OTLP/HTTP collector: the contexts a flight's jobs carry, read only while the worker traces;
each attempt's ``deliver`` span ended with its outcome, a retry's job keeping its context; Redis
not answering costs a span its parent or link, never a delivery. And one delivery flown twice
through the real flight, as the trace a collector shows: a partner that asked gets the POST's
``traceparent`` alone (never a caller's ``tracestate``), and a job dispatched untraced makes
its attempts one trace of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import redis
from opentelemetry import context as otel_context
from rq import Retry

from dispatcher import queue, store, telemetry
from dispatcher.queue import rq_edge
from dispatcher.runtime import Runtime
from dispatcher.telemetry import start_deliver
from dispatcher.vocabulary import AttemptOutcome
from dispatcher.worker.posting import Sending
from dispatcher.worker.tracing import contexts, end_attempts
from tests.otlp_receiver import OtlpReceiver, Span
from tests.servers import ScriptedReceiver
from tests.telemetry.conftest import (
    CLIENT,
    CONSUMER,
    ERROR,
    UNSET,
    carried,
    collecting,
    exported,
    ids,
    only,
    settings_for,
)
from tests.telemetry.test_spans import with_state
from tests.worker.test_flight import deliver, dispatch_one

DISPATCH = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ATTEMPT = "00-0af7651916cd43dd8448eb211c80319c-53995c3f42cd8ad8-01"
UNREACHABLE = "redis://127.0.0.1:1/0"
PARTNER = {"name": "pharmacy", "url": "http://127.0.0.1:9/hooks", "key": "k3y-tracing-31337", "events": ["*"]}


@pytest.fixture
def collector() -> Iterator[OtlpReceiver]:
    """A collector; telemetry off after the test (``tests/telemetry/conftest.py``)."""
    with collecting() as receiver:
        yield receiver


@pytest.fixture
def traced(collector: OtlpReceiver) -> OtlpReceiver:
    """Telemetry on, exporting to the collector."""
    assert telemetry.configure(settings_for(collector)) is True
    return collector


def traced_runtime(make_runtime: Callable[..., Runtime], collector: OtlpReceiver, **given) -> Runtime:
    """A runtime whose ``telemetry:`` is the one the ``traced`` fixture configured (installing it
    configures telemetry again with equal settings: the same providers, still on)."""
    runtime = make_runtime(telemetry={"otlp_endpoint": collector.url}, **given)
    assert telemetry.enabled()
    return runtime


def sending(runtime: Runtime, request_id: str, traced: bool = True, attempt: int = 1) -> Sending:
    """A claimed delivery's attempt, its ``deliver`` span started (a child of ``DISPATCH``)."""
    endpoint = runtime.settings.endpoints[0]
    claim = store.Claim(request_id, "order_changed", endpoint.name, endpoint.url, "{}", attempt, 5)
    made = Sending(claim, endpoint, runtime.settings.delivery, b"{}", "{}", {}, False)
    if traced:
        made.span = start_deliver(
            DISPATCH, None, request_id=request_id, endpoint=endpoint.name, attempt=attempt
        )
        assert made.span is not None
    return made


def last_attempt(runtime: Runtime, request_id: str) -> str | None:
    return queue.traces(runtime.queue, [request_id])[request_id][1]


# --- contexts ------------------------------------------------------------------------------------


def test_contexts_while_off_are_empty_and_ask_nothing_of_redis(make_runtime) -> None:
    runtime = make_runtime(redis_url=UNREACHABLE)
    assert not telemetry.enabled()

    assert contexts(runtime, ["r-1", "r-2"]) == {}

    assert "redis" not in runtime.__dict__ and "queue" not in runtime.__dict__  # never made


def test_contexts_while_on_are_each_jobs_two_contexts(traced: OtlpReceiver, make_runtime) -> None:
    runtime = traced_runtime(make_runtime, traced)
    queue.enqueue_new(runtime.queue, ["r-1", "r-2"], {"r-1": DISPATCH})
    queue.keep_attempt_traces(runtime.queue, {"r-1": ATTEMPT})

    assert contexts(runtime, ["r-1", "r-2", "r-3"]) == {
        "r-1": (DISPATCH, ATTEMPT),
        "r-2": (None, None),
        "r-3": (None, None),
    }
    assert contexts(runtime, []) == {}


def test_contexts_with_redis_down_are_empty(traced: OtlpReceiver, make_runtime) -> None:
    runtime = traced_runtime(make_runtime, traced, redis_url=UNREACHABLE)

    assert contexts(runtime, ["r-1"]) == {}


# --- end_attempts --------------------------------------------------------------------------------


def test_end_attempts_ends_each_span_and_a_retrys_job_keeps_its_context(
    traced: OtlpReceiver, make_runtime
) -> None:
    runtime = traced_runtime(make_runtime, traced, endpoints=[PARTNER])
    queue.enqueue_new(runtime.queue, ["done", "again", "untraced", "failed"], {"again": DISPATCH})
    ended = [
        (sending(runtime, "done"), AttemptOutcome.DELIVERED),
        (sending(runtime, "again"), AttemptOutcome.RETRY_SCHEDULED),
        (sending(runtime, "untraced", traced=False), AttemptOutcome.RETRY_SCHEDULED),
        (sending(runtime, "failed"), AttemptOutcome.FAILED),
        (sending(runtime, "gone"), AttemptOutcome.RETRY_SCHEDULED),
    ]

    end_attempts(runtime, ended)

    spans = {s.attributes["webhook.request_id"]: s for s in exported(traced) if s.name == "deliver"}
    assert set(spans) == {"done", "again", "failed", "gone"}
    assert {rid: s.attributes["webhook.outcome"] for rid, s in spans.items()} == {
        "done": "delivered",
        "again": "retry_scheduled",
        "failed": "failed",
        "gone": "retry_scheduled",
    }
    assert spans["failed"].status_code == ERROR and spans["again"].status_code == UNSET
    assert all(s.kind == CONSUMER and s.trace_id == DISPATCH.split("-")[1] for s in spans.values())
    kept = last_attempt(runtime, "again")
    assert kept is not None and carried(kept) == ids(spans["again"])
    assert [last_attempt(runtime, rid) for rid in ("done", "untraced", "failed")] == [None, None, None]
    assert not runtime.redis.exists(rq_edge.job_key("gone"))  # no record made for it
    assert queue.traces(runtime.queue, ["again"])["again"][0] == DISPATCH


def test_end_attempts_while_off_with_redis_down_raises_nothing(make_runtime) -> None:
    runtime = make_runtime(redis_url=UNREACHABLE, endpoints=[PARTNER])
    untraced = sending(runtime, "r-1", traced=False)

    end_attempts(runtime, [(untraced, AttemptOutcome.RETRY_SCHEDULED)])

    assert untraced.span is None


def test_end_attempts_with_redis_down_ends_the_spans_and_raises_nothing(
    traced: OtlpReceiver, make_runtime
) -> None:
    runtime = traced_runtime(make_runtime, traced, redis_url=UNREACHABLE, endpoints=[PARTNER])

    end_attempts(runtime, [(sending(runtime, "r-1"), AttemptOutcome.RETRY_SCHEDULED)])

    assert only(exported(traced), "deliver").attributes["webhook.outcome"] == "retry_scheduled"


# --- through the flight --------------------------------------------------------------------------


def _attempts(spans: list[Span]) -> dict[int, Span]:
    return {s.attributes["webhook.attempt"]: s for s in spans if s.name == "deliver"}


def _redacted(url: str) -> str:
    """``url`` as ``url.full`` shows it: scheme, host and port, the path redacted."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/REDACTED"


def _post_of(spans: list[Span], deliver_span: Span) -> Span:
    (post,) = [s for s in spans if s.name == "POST" and s.parent_span_id == deliver_span.span_id]
    return post


def test_a_retried_delivery_is_one_trace_from_dispatch_to_each_post(
    traced: OtlpReceiver, make_runtime, receiver: ScriptedReceiver
) -> None:
    runtime = traced_runtime(
        make_runtime,
        traced,
        endpoints=[
            {"name": "pharmacy", "url": receiver.url, "key": "k3y-tracing-31337", "propagate_trace": True}
        ],
    )
    receiver.script_all(503)
    request_id = dispatch_one()

    assert isinstance(deliver(request_id), Retry)
    kept = last_attempt(runtime, request_id)
    assert deliver(request_id) is None  # delivered

    spans = exported(traced)
    dispatch, attempts = only(spans, "dispatch"), _attempts(spans)
    for number, outcome, status in ((1, "retry_scheduled", 503), (2, "delivered", 200)):
        span = attempts[number]
        assert (span.trace_id, span.parent_span_id) == (dispatch.trace_id, dispatch.span_id)
        assert span.attributes["webhook.outcome"] == outcome
        assert span.attributes["webhook.request_id"] == request_id
        post = _post_of(spans, span)
        assert post.kind == CLIENT and post.attributes["http.response.status_code"] == status
        assert post.attributes["url.full"] == _redacted(receiver.url)
        sent = receiver.for_request(request_id)[number - 1]
        assert carried(sent.headers["traceparent"]) == ids(post)
        assert "tracestate" not in {name.lower() for name in sent.headers}
    assert kept is not None and carried(kept) == ids(attempts[1])
    assert attempts[2].links == [(attempts[1].trace_id, attempts[1].span_id)]
    assert attempts[1].links == []
    assert b"k3y-tracing-31337" not in traced.all_bytes()
    assert b"/webhooks/baremeds" not in traced.all_bytes()  # the partner's path


def test_a_callers_tracestate_reaches_neither_the_partner_nor_the_collector(
    traced: OtlpReceiver, make_runtime, receiver: ScriptedReceiver
) -> None:
    """Dispatched inside the host application's span, which holds a ``tracestate``: the trace
    goes on to the partner that asked for it, as a ``traceparent`` alone."""
    traced_runtime(
        make_runtime,
        traced,
        endpoints=[{"name": "pharmacy", "url": receiver.url, "key": "k", "propagate_trace": True}],
    )
    token = otel_context.attach(with_state(DISPATCH))
    try:
        request_id = dispatch_one()
    finally:
        otel_context.detach(token)

    assert deliver(request_id) is None

    (sent,) = receiver.received
    assert "tracestate" not in {name.lower() for name in sent.headers}
    spans = exported(traced)
    post = only(spans, "POST")
    assert carried(sent.headers["traceparent"]) == ids(post)
    assert post.trace_id == only(spans, "dispatch").trace_id == DISPATCH.split("-")[1]
    assert b"s3cret-state" not in traced.all_bytes()


def test_a_partner_that_did_not_ask_gets_no_traceparent(
    traced: OtlpReceiver, make_runtime, receiver: ScriptedReceiver
) -> None:
    traced_runtime(make_runtime, traced, endpoints=[{"name": "pharmacy", "url": receiver.url, "key": "k"}])
    request_id = dispatch_one()

    assert deliver(request_id) is None

    (sent,) = receiver.received
    assert "traceparent" not in {name.lower() for name in sent.headers}
    spans = exported(traced)
    assert only(spans, "deliver").parent_span_id == only(spans, "dispatch").span_id
    assert only(spans, "POST").parent_span_id == only(spans, "deliver").span_id


def test_a_job_dispatched_untraced_is_delivered_in_a_trace_of_its_own(
    collector: OtlpReceiver, make_runtime, receiver: ScriptedReceiver
) -> None:
    """Dispatched while telemetry was off (or queued again by reconcile): the job carries no
    context, the worker that traces starts the first attempt's trace, and the retry is that
    attempt's child in it, linked to it."""
    untraced = make_runtime(endpoints=[{"name": "pharmacy", "url": receiver.url, "key": "k"}])
    receiver.script_all(503)
    request_id = dispatch_one()
    assert queue.traces(untraced.queue, [request_id]) == {request_id: (None, None)}
    assert telemetry.configure(settings_for(collector)) is True

    assert isinstance(deliver(request_id), Retry)
    assert deliver(request_id) is None  # delivered

    spans = exported(collector)
    assert [s.name for s in spans if s.name == "dispatch"] == []
    first, second = _attempts(spans)[1], _attempts(spans)[2]
    assert first.parent_span_id == "" and first.links == []
    assert (second.trace_id, second.parent_span_id) == (first.trace_id, first.span_id)
    assert second.links == [(first.trace_id, first.span_id)]
    for attempt in (first, second):
        assert _post_of(spans, attempt).trace_id == first.trace_id


def test_redis_refusing_the_contexts_never_fails_the_delivery(
    traced: OtlpReceiver, make_runtime, receiver: ScriptedReceiver, monkeypatch
) -> None:
    runtime = traced_runtime(
        make_runtime, traced, endpoints=[{"name": "pharmacy", "url": receiver.url, "key": "k"}]
    )
    request_id = dispatch_one()

    def refused(*_args, **_kwargs):
        raise redis.ConnectionError("Redis is loading the dataset in memory")

    monkeypatch.setattr(queue, "traces", refused)
    monkeypatch.setattr(queue, "keep_attempt_traces", refused)

    assert deliver(request_id) is None

    assert store.get_delivery(runtime.engine, request_id)["status"] == "delivered"
    assert only(exported(traced), "deliver").parent_span_id == ""


def test_a_delivery_failed_before_any_post_has_its_deliver_span_and_no_post(
    traced: OtlpReceiver, make_runtime, receiver: ScriptedReceiver
) -> None:
    import sqlalchemy as sa

    from dispatcher.store.schema import DELIVERIES

    runtime = traced_runtime(make_runtime, traced, endpoints=[{"name": "pharmacy", "url": receiver.url}])
    request_id = dispatch_one()
    with runtime.engine.begin() as conn:  # as if erased: nothing left to send
        conn.execute(sa.update(DELIVERIES).where(DELIVERIES.c.request_id == request_id).values(payload=None))

    assert deliver(request_id) is None
    assert store.get_delivery(runtime.engine, request_id)["status"] == "failed"
    assert receiver.for_request(request_id) == []
    spans = exported(traced)
    dispatch, failed = only(spans, "dispatch"), only(spans, "deliver")
    assert (failed.trace_id, failed.parent_span_id) == (dispatch.trace_id, dispatch.span_id)
    assert failed.attributes["webhook.outcome"] == "failed"
    assert failed.attributes["error.type"] == "not_sent" and failed.status_code == ERROR
    assert [s for s in spans if s.name == "POST"] == []


def test_an_unsampled_event_builds_no_span_and_still_passes_its_traceparent_on(
    traced: OtlpReceiver, make_runtime, receiver: ScriptedReceiver
) -> None:
    """sample_ratio 0: the dispatch is not sampled, the worker builds no deliver span (the
    parentbased sampler would drop it), and an endpoint that asked still gets the traceparent,
    its sampled flag off."""
    runtime = make_runtime(
        telemetry={"otlp_endpoint": traced.url, "sample_ratio": 0.0},
        endpoints=[{"name": "pharmacy", "url": receiver.url, "propagate_trace": True}],
    )
    assert telemetry.enabled()
    request_id = dispatch_one()
    carried_context = queue.traces(runtime.queue, [request_id])[request_id][0]
    assert carried_context is not None and not int(carried_context[-2:], 16) & 1  # the sampled bit off

    assert deliver(request_id) is None
    (sent,) = receiver.for_request(request_id)
    assert sent.headers["traceparent"] == carried_context
    assert exported(traced) == []
