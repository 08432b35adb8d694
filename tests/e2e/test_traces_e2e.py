"""One trace per event, across three processes: this test's process dispatches (under a span of
its own, as a web request would), two real `python worker.py` processes deliver, and a real
OTLP/HTTP collector (tests/otlp_receiver.py, decoding with opentelemetry-proto) receives what
each exports. Every value the event carries, the endpoint's key and signing secret and the
partner's answer are markers, searched for in every exported byte."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatcher import dispatch, store, telemetry
from dispatcher.telemetry import providers
from tests.conftest import wait_for
from tests.e2e.test_worker_e2e import wait_final
from tests.otlp_receiver import OtlpReceiver, Span
from tests.servers import Answer, ScriptedReceiver

pytest.importorskip("opentelemetry.sdk", reason="the otel extra: pip install -e '.[otel]'")

KEY = "KEY-MARKER-7f3a"
SECRET = "whsec_" + "U0VDUkVULU1BUktFUi0xMjM0NTY3ODkwYWJjZA=="
ANSWER = b'{"echo":"ANSWER-MARKER-5d1e"}'
DATA = {
    "patient_id": "PHI-MARKER-patient",
    "encounter_id": "PHI-MARKER-encounter",
    "reason": "PHI-MARKER-reason",
    "cancel_by_name": "PHI-MARKER-name",
    "cancel_by_id": "PHI-MARKER-provider",
    "created_at": "2026-01-30T12:00:00Z",
}
MARKERS = [
    b"MARKER",
    KEY.encode(),
    SECRET.encode(),
    b"U0VDUkVULU1BUktFUi",
    b"2026-01-30T12:00:00Z",
    b"webhooks/baremeds",
]
SERVER, CONSUMER, CLIENT, PRODUCER = 2, 5, 3, 4  # OTLP's span kinds


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    telemetry.shutdown()
    receiver.stop()


@pytest.fixture
def partner_b() -> Iterator[ScriptedReceiver]:
    server = ScriptedReceiver()
    yield server
    server.close()


def _endpoints(receiver: ScriptedReceiver, partner_b: ScriptedReceiver) -> list[dict]:
    return [
        {
            "name": "pharmacy",
            "url": receiver.url + "?token=QUERY-MARKER",
            "key": KEY,
            "propagate_trace": True,
        },
        {"name": "lab", "url": partner_b.url, "key": KEY, "signing_secret": SECRET},
    ]


def _of(spans: list[Span], name: str, trace_id: str) -> list[Span]:
    return [s for s in spans if s.name == name and s.trace_id == trace_id]


def test_one_trace_per_event_across_three_processes_with_no_phi(
    otlp, make_runtime, write_config, start_worker, receiver, partner_b
):
    receiver.script_all(Answer(status=503, body=ANSWER), Answer(status=200, body=ANSWER))
    partner_b.script_all(Answer(status=200, body=ANSWER))
    endpoints = _endpoints(receiver, partner_b)
    runtime = make_runtime(
        endpoints=endpoints, telemetry={"otlp_endpoint": otlp.url, "service_name": "clinic"}
    )
    assert telemetry.enabled()
    config = write_config(endpoints=endpoints, telemetry={"otlp_endpoint": otlp.url})

    def env(n: int) -> dict[str, str]:  # the file leaves service_name unset: OTEL_SERVICE_NAME fills it
        return {
            "OTEL_SERVICE_NAME": f"worker-{n}",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_METRIC_EXPORT_INTERVAL": "300",
        }

    first_worker = start_worker(config, extra_env=env(1))
    tracer = providers.tracer()
    assert tracer is not None
    events = []
    for _ in range(3):
        with tracer.start_as_current_span("web request") as web:
            ids = dispatch("encounter_cancelled", DATA, dispatched_by="PHI-MARKER-dispatcher")
        events.append((format(web.get_span_context().trace_id, "032x"), ids))
    # Worker 1 makes every first attempt and stops; worker 2, another process, makes the retries.
    every = [rid for _, ids in events for rid in ids]
    wait_for(lambda: all(store.list_attempts(runtime.engine, rid) for rid in every), message="first attempts")
    first_worker.stop()
    start_worker(config, extra_env=env(2))
    rows = wait_final(runtime, every)
    assert {r["status"] for r in rows} == {"delivered"}
    telemetry.flush()
    # each event: web + dispatch, then per endpoint: pharmacy 2 attempts, lab 1 -- a deliver and a POST each
    per_event = 2 + 2 * 3
    spans = otlp.wait_for(lambda got: len(got) >= per_event * len(events))

    assert {s.trace_id for s in spans} == {trace_id for trace_id, _ in events}  # no stray trace
    assert len(spans) == per_event * len(events)
    for trace_id, ids in events:
        (web,) = _of(spans, "web request", trace_id)
        (dispatched,) = _of(spans, "dispatch", trace_id)
        assert dispatched.parent_span_id == web.span_id and dispatched.service == "clinic"
        assert dispatched.kind == PRODUCER
        assert dispatched.attributes == {"webhook.event": "encounter_cancelled", "webhook.deliveries": 2}
        delivers = _of(spans, "deliver", trace_id)
        assert len(delivers) == 3, [(s.name, s.attributes) for s in spans if s.trace_id == trace_id]
        assert {d.parent_span_id for d in delivers} == {dispatched.span_id}
        assert [d.service for d in delivers if d.attributes["webhook.attempt"] == 2] == ["worker-2"]
        assert {d.service for d in delivers if d.attributes["webhook.attempt"] == 1} == {"worker-1"} and all(
            d.kind == CONSUMER for d in delivers
        )
        assert {d.attributes["webhook.request_id"] for d in delivers} == set(ids)
        pharmacy = sorted(
            (d for d in delivers if d.attributes["webhook.endpoint"] == "pharmacy"),
            key=lambda d: d.attributes["webhook.attempt"],
        )
        first, second = pharmacy
        assert (first.attributes["webhook.outcome"], first.attributes["webhook.retry"]) == (
            "retry_scheduled",
            False,
        )
        assert (second.attributes["webhook.outcome"], second.attributes["webhook.retry"]) == (
            "delivered",
            True,
        )
        assert second.links == [(trace_id, first.span_id)] and first.links == []
        posts = _of(spans, "POST", trace_id)
        assert len(posts) == 3 and {p.parent_span_id for p in posts} == {d.span_id for d in delivers}
        by_parent = {p.parent_span_id: p for p in posts}
        failed = by_parent[first.span_id].attributes
        assert failed == {
            "http.request.method": "POST",
            "server.address": "127.0.0.1",
            "server.port": int(receiver.url.split(":")[2].split("/")[0]),
            "url.full": receiver.url.rsplit("/webhooks", 1)[0] + "/REDACTED",  # no path, no query
            "http.response.status_code": 503,
            "error.type": "503",
        }
        assert by_parent[second.span_id].attributes["http.response.status_code"] == 200
        assert all(p.kind == CLIENT for p in posts)
        # The pharmacy asked for the trace: its POSTs carry the POST span's traceparent; the lab's carry none.
        pharmacy_id = next(d.attributes["webhook.request_id"] for d in pharmacy)
        sent = [g.headers.get("traceparent", "").split("-")[:3] for g in receiver.for_request(pharmacy_id)]
        assert sent == [["00", trace_id, by_parent[d.span_id].span_id] for d in pharmacy]
        lab_id = next(rid for rid in ids if rid != pharmacy_id)
        assert [g.headers.get("traceparent") for g in partner_b.for_request(lab_id)] == [None]

    # The resource says which service and instance, and nothing of the process's command line.
    sdk = {"telemetry.sdk.language", "telemetry.sdk.name", "telemetry.sdk.version"}
    assert {key for span in spans for key in span.resource} == {"service.name", "service.instance.id"} | sdk
    assert len({span.resource["service.instance.id"] for span in spans}) == 3  # three processes
    # The workers' metrics went out over OTLP too: the delivery lag of what they delivered.
    wanted: set[str] = {
        "dispatcher_delivery_lag_seconds",
        "dispatcher_first_attempt_lag_seconds",
        "webhook_deliveries",
    }
    wait_for(lambda: wanted <= otlp.metric_names, message="the workers' metrics over OTLP")
    wait_for(lambda: _lag_count(otlp) >= 6, message="every delivery's lag exported")
    everything = otlp.all_bytes()
    for marker in MARKERS:
        assert marker not in everything, marker


def _lag_count(otlp: OtlpReceiver) -> int:
    """The lag histograms' counts, the latest point per worker, endpoint and event (cumulative)."""
    with otlp.lock:
        points = [
            (attrs, p) for name, attrs, p in otlp.metric_points if name == "dispatcher_delivery_lag_seconds"
        ]
    latest = {}
    for attrs, point in points:
        latest[(point.start_time_unix_nano, attrs["endpoint"], attrs["event"])] = point.count
    return sum(latest.values())


def test_untraced_dispatcher_leaves_workers_a_trace_per_attempt(
    otlp, make_runtime, write_config, start_worker, receiver, partner_b
):
    """A caller with telemetry off sends no context: each attempt's span starts a trace of its
    own, and nothing is added to the partner's request."""
    endpoints = _endpoints(receiver, partner_b)
    runtime = make_runtime(endpoints=endpoints)
    assert not telemetry.enabled()
    config = write_config(endpoints=endpoints, telemetry={"otlp_endpoint": otlp.url})
    start_worker(config, extra_env={"OTEL_BSP_SCHEDULE_DELAY": "100"})
    ids = dispatch("encounter_cancelled", DATA)
    wait_final(runtime, ids)
    spans = otlp.wait_for(lambda got: len([s for s in got if s.name == "deliver"]) >= 2)
    delivers = [s for s in spans if s.name == "deliver"]
    assert len(delivers) == 2 and all(d.parent_span_id == "" for d in delivers)
    assert len({d.trace_id for d in delivers}) == 2
    assert not [s for s in spans if s.name == "dispatch"]
    wait_for(lambda: receiver.for_request(ids[0]) or receiver.for_request(ids[1]), message="the POST")
    pharmacy = [g for rid in ids for g in receiver.for_request(rid)]
    assert [g.headers.get("traceparent", "")[36:52] for g in pharmacy] == [
        s.span_id
        for s in spans
        if s.name == "POST" and s.attributes["server.port"] == receiver.server.server_address[1]
    ]
