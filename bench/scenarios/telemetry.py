"""Issue 27: what OpenTelemetry traces cost, with ``telemetry: {otlp_endpoint, sample_ratio: 1.0}``
against telemetry off, and telemetry off against the code before issue 27.

Three modes, run alternately (the order rotates each round), on PostgreSQL (database ``bench``)
and Redis DB 4:

* ``before``: the code before issue 27 (:func:`base_tree`: ``BENCH_BASE``, a directory or a git
  revision of the code under test, by default :data:`BEFORE_ISSUE_27`, extracted with ``git
  archive``), no ``telemetry`` key (it has none);
* ``off``: the code under test, no ``telemetry`` key;
* ``on``: the code under test, ``telemetry: {otlp_endpoint: <the sink>, sample_ratio: 1.0}``.

The OTLP sink is a child process (``python -m bench.scenarios.telemetry sink PORT``): a raw
asyncio HTTP/1.1 server on 127.0.0.1 answering ``200`` with an empty body to every POST,
counting requests and bytes per path; it keeps the ``/v1/traces`` bodies and counts their spans
by name (``opentelemetry-proto``) only when asked, between runs (``GET /bench/stats``). Every
child starts without ``OTEL_*`` variables, so ``off`` is off whatever the shell has set.

1. **Workers.** N deliveries (2,000; 400 with ``--quick``) queued with ``dispatch_many`` (``on``:
   with tracing on in the benchmark process, so each job carries its ``dispatch`` span's context,
   those spans flushed before the workers start), then drained by 4 burst workers of the mode's
   code to the instant receiver: deliveries/s first claim → last record (and by the queue), the
   workers' CPU per delivery, and what the sink received while they ran (``on``: ``deliver`` and
   ``POST`` spans, 2 per delivery; ``off`` and ``before``: nothing, which is checked).
2. **Dispatch.** In a child process of the benchmark per run (``python -m
   bench.scenarios.telemetry dispatch CONFIG CALLS BATCHES``, ``BENCH_CODE`` naming the mode's
   code, so ``before`` runs too and each run starts with fresh telemetry): ``dispatch()`` one at a
   time (after 30 warm-up calls), then ``dispatch_many`` in batches of 500; events/s, p50, CPU
   per event (the span processor's thread included), ``dispatch`` spans the sink received.

Reported: each mode's medians, on ÷ off and off ÷ before (of the medians and per round), and
the CPU time the host stole from this VM during the runs (``/proc/stat``).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench.harness import BATCH, CODE, DRAIN_WORKERS, EVENT, PG_URL, QUEUE_NAME, QUICK, ROOT, Sizes, say
from bench.harness.driver import (
    attempt_summary,
    db_engine,
    delivery_counts,
    driver_runtime,
    our_config,
    queue_backlog,
    reset_database,
    sample_data,
)
from bench.harness.processes import Processes, child_env, free_port, start_instant_receiver, wait_for_port
from bench.harness.procfs import CLOCK_TICKS, cpu_seconds
from bench.harness.services import flush_redis, redis_client, watch_drain

DELIVERIES = {"quick": 400, "full": 2000}
ROUNDS = {"quick": 3, "full": 8}
"""Worker runs of each mode: runs of one mode vary by ±15 % on the shared 2-core machine."""
DISPATCH_ROUNDS = {"quick": 3, "full": 5}
MODES = ("before", "off", "on")
SAMPLE_RATIO = float(os.environ.get("BENCH_SAMPLE_RATIO", "1.0"))
"""The issue's 1.0; ``BENCH_SAMPLE_RATIO=0.1`` measures what sampling saves."""
STATS_PATH = "/bench/stats"
WARMUP_CALLS = 30
BEFORE_ISSUE_27 = "89d06c01f4658ab96bb1fe31af3df1eabc9bb6d9"
"""The last commit before issue 27's work: the ``before`` code unless ``BENCH_BASE`` names another."""
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
REFUSED = b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


# --- the OTLP sink, in its child process ---------------------------------------------------------


class Sink(asyncio.Protocol):
    """Answers every POST ``200`` with an empty body at once; counts requests and bytes per path;
    keeps ``/v1/traces`` bodies to count their spans when ``GET /bench/stats`` asks."""

    requests: Counter[str] = Counter()
    body_bytes: Counter[str] = Counter()
    spans: Counter[str] = Counter()
    pending: list[tuple[bytes, bool]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            lines = bytes(self.buffer[:end]).split(b"\r\n")
            method, path = (lines[0].split(b" ") + [b"", b""])[:2]
            headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(b":") for x in lines[1:])}
            if b"chunked" in headers.get(b"transfer-encoding", b""):
                self.transport.write(REFUSED)
                self.transport.close()
                return
            total = end + 4 + int(headers.get(b"content-length", b"0") or 0)
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4 : total])
            del self.buffer[:total]
            self.transport.write(self.answer(method, path.decode("ascii", "replace"), headers, body))

    def answer(self, method: bytes, path: str, headers: dict[bytes, bytes], body: bytes) -> bytes:
        if method == b"GET" and path == STATS_PATH:
            stats = json.dumps(self.stats()).encode()
            return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                len(stats),
                stats,
            )
        Sink.requests[path] += 1
        Sink.body_bytes[path] += len(body)
        if path == "/v1/traces":
            Sink.pending.append((body, headers.get(b"content-encoding", b"") == b"gzip"))
        return OK

    @staticmethod
    def stats() -> dict[str, Any]:
        """The counts so far; the spans of the trace bodies received since the last call are
        counted now (by name), and the bodies dropped."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        pending, Sink.pending = Sink.pending, []
        for body, gzipped in pending:
            message = ExportTraceServiceRequest.FromString(gzip.decompress(body) if gzipped else body)
            for resource in message.resource_spans:
                for scope in resource.scope_spans:
                    Sink.spans.update(span.name for span in scope.spans)
        return {"requests": Sink.requests, "bytes": Sink.body_bytes, "spans": Sink.spans}


async def serve_sink(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, "127.0.0.1", port, backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"OTLP sink listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await stop.wait()


@dataclass
class SinkProcess:
    proc: subprocess.Popen[bytes]
    url: str

    def stats(self) -> dict[str, Counter[str]]:
        response = requests.get(self.url + STATS_PATH, timeout=30)
        response.raise_for_status()
        return {k: Counter(v) for k, v in response.json().items()}

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)


def start_sink(procs: Processes) -> SinkProcess:
    port = free_port()
    env = clean_env(ROOT)
    proc = procs.start(
        "otlp-sink", [sys.executable, "-m", "bench.scenarios.telemetry", "sink", str(port)], env
    )
    wait_for_port(port, proc)
    sink = SinkProcess(proc, f"http://127.0.0.1:{port}")
    answer = requests.post(sink.url + "/bench/ping", data=b"x", timeout=5)
    if answer.status_code != 200 or answer.content:
        raise RuntimeError(f"the OTLP sink answered {answer.status_code} {answer.content[:50]!r}")
    return sink


def received(before: dict[str, Counter[str]], after: dict[str, Counter[str]]) -> dict[str, Any]:
    """What the sink received between two readings."""
    kinds = ("requests", "bytes", "spans")
    delta = {k: {n: v for n, v in (after[k] - before[k]).items() if v} for k in kinds}
    return {
        "trace_requests": delta["requests"].get("/v1/traces", 0),
        "trace_bytes": delta["bytes"].get("/v1/traces", 0),
        "metric_requests": delta["requests"].get("/v1/metrics", 0),
        "metric_bytes": delta["bytes"].get("/v1/metrics", 0),
        "spans": delta["spans"],
    }


# --- the code trees --------------------------------------------------------------------------------


def clean_env(code: Path, config: Path | None = None) -> dict[str, str]:
    """:func:`child_env` with ``code``'s ``dispatcher`` first (and ``BENCH_CODE`` naming it), no
    ``OTEL_*`` variable."""
    env = {k: v for k, v in child_env(config).items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(code), str(ROOT)]))
    env["BENCH_CODE"] = str(code)
    return env


def base_tree(tmp: Path) -> tuple[Path, str]:
    """The code before issue 27: ``BENCH_BASE`` when it is a directory, else that revision (by
    default :data:`BEFORE_ISSUE_27`) of the code under test, extracted with ``git archive`` into
    ``tmp``."""
    given = os.environ.get("BENCH_BASE") or BEFORE_ISSUE_27
    if Path(given).is_dir():
        where = Path(given).resolve()
        return where, str(where)
    git = ["git", "-C", str(CODE)]
    commit = subprocess.run([*git, "rev-parse", "--short", given], capture_output=True, text=True, check=True)
    where = tmp / "base"
    where.mkdir()
    archive = subprocess.run([*git, "archive", given], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where, f"{given} = {commit.stdout.strip()} of {CODE} (git archive)"


def imported_from(code: Path) -> Path:
    """Where ``dispatcher`` comes from for a script in ``code`` (``worker.py``'s directory is
    first on its path, as the current directory is for ``-c``)."""
    out = subprocess.run(
        [sys.executable, "-c", "import dispatcher; print(dispatcher.__file__)"],
        cwd=code,
        env=clean_env(code),
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip()).resolve().parent.parent


@dataclass
class Context:
    url: str
    sink: SinkProcess
    base: Path

    def code(self, mode: str) -> Path:
        return self.base if mode == "before" else CODE

    def extra(self, mode: str) -> dict[str, Any]:
        if mode != "on":
            return {}
        return {"telemetry": {"otlp_endpoint": self.sink.url, "sample_ratio": SAMPLE_RATIO}}


def steal_seconds() -> float:
    """CPU seconds the hypervisor stole from this VM since boot, all cores (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / CLOCK_TICKS


def check_exports(mode: str, got: dict[str, Any], what: str) -> None:
    """``on`` exported spans; ``off`` and ``before`` exported nothing."""
    if mode == "on" and got["trace_bytes"] <= 0:
        raise RuntimeError(f"{what}: tracing on, but the OTLP sink received no span")
    if mode != "on" and (got["trace_requests"] or got["metric_requests"]):
        raise RuntimeError(f"{what}: telemetry {mode}, but the OTLP sink received {got}")


# --- 1. the workers --------------------------------------------------------------------------------


def queue_for(raw: dict[str, Any], mode: str, n: int) -> None:
    """``n`` deliveries queued by this process; with tracing on, its ``dispatch`` spans are
    exported (and tracing stopped) before the workers start."""
    with driver_runtime(raw):
        queue_backlog(n)
    if mode == "on":
        from dispatcher import telemetry

        telemetry.shutdown()


def start_workers(procs: Processes, ctx: Context, mode: str, config: Path, label: str) -> list[Any]:
    code = ctx.code(mode)
    cmd = [sys.executable, str(code / "worker.py"), "--burst"]
    return [procs.start(f"{label}-{i}", cmd, clean_env(code, config)) for i in range(DRAIN_WORKERS)]


def drain_once(procs: Processes, tmp: Path, ctx: Context, mode: str, label: str, n: int) -> dict[str, Any]:
    """``n`` deliveries queued, then drained by :data:`DRAIN_WORKERS` burst workers of the mode's
    code starting together: the rates, the workers' CPU, what the sink received, the steal."""
    flush_redis()
    reset_database(PG_URL)
    config, raw = our_config(tmp, label, ctx.url, PG_URL, extra=ctx.extra(mode))
    queue_for(raw, mode, n)
    conn = redis_client()
    before, steal, sink_cpu = ctx.sink.stats(), steal_seconds(), ctx.sink.cpu()
    workers = start_workers(procs, ctx, mode, config, label)
    try:
        result = watch_drain(conn, f"rq:queue:{QUEUE_NAME}", workers, n, timeout=max(300, n / 10))
    finally:
        procs.stop(workers)
        conn.close()
    result["steal_s"], result["sink_cpu_s"] = steal_seconds() - steal, ctx.sink.cpu() - sink_cpu
    result["exported"] = received(before, ctx.sink.stats())
    check_exports(mode, result["exported"], f"workers ({label})")
    engine = db_engine(PG_URL)
    counts, summary = delivery_counts(engine), attempt_summary(engine)
    engine.dispose()
    result.update(summary, statuses=counts)
    result["db_rate"] = n / summary["db_span_s"] if summary.get("db_span_s") else None
    result["all_delivered_once"] = (
        counts.get("delivered") == n and summary["attempt_rows"] == n and summary["distinct_deliveries"] == n
    )
    return result


def one_worker_run(r: dict[str, Any]) -> str:
    spans = ", ".join(f"{k} {v}" for k, v in sorted(r["exported"]["spans"].items())) or "none"
    return (
        f"{r['db_rate'] or 0:.0f}/s first claim → last record, {r['rate']:.0f}/s by the queue; worker CPU "
        f"{r['cpu_ms_per_job'] or 0:.2f} ms/delivery; spans exported: {spans} "
        f"({r['exported']['trace_bytes']:,} B); all delivered once: {r['all_delivered_once']}; "
        f"steal {r['steal_s']:.2f} s; load {r['load_average_1m']:.1f}"
    )


def rotation(round_: int) -> tuple[str, ...]:
    """The modes' order in a round: rotated by one each round."""
    k = round_ % len(MODES)
    return MODES[k:] + MODES[:k]


def worker_rounds(procs: Processes, tmp: Path, ctx: Context, n: int, rounds: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for round_ in range(rounds):
        for mode in rotation(round_):
            r = drain_once(procs, tmp, ctx, mode, f"telemetry-{mode}-{round_}", n)
            runs[mode].append(r)
            say(f"   [{round_ + 1}/{rounds}] workers, {mode}: {one_worker_run(r)}")
    out: dict[str, Any] = {"n": n, "workers": DRAIN_WORKERS, "rounds": rounds}
    for mode, results in runs.items():
        out[mode] = {
            "rate": median([r["db_rate"] for r in results]),
            "queue_rate": median([r["rate"] for r in results]),
            "cpu_ms_per_job": median([r["cpu_ms_per_job"] for r in results]),
            "spread": spread([r["db_rate"] for r in results]),
            "all_delivered_once": all(r["all_delivered_once"] for r in results),
            "exported": total_exports([r["exported"] for r in results]),
            "steal_s": sum(r["steal_s"] for r in results),
            "sink_cpu_s": sum(r["sink_cpu_s"] for r in results),
            "load_average_1m": [r["load_average_1m"] for r in results],
            "runs": results,
        }
    out.update(ratios(out, "rate", "db_rate"))
    out["cpu_on_off"] = ratio(out["on"]["cpu_ms_per_job"], out["off"]["cpu_ms_per_job"])
    out["cpu_off_before"] = ratio(out["off"]["cpu_ms_per_job"], out["before"]["cpu_ms_per_job"])
    out["queue_on_off"] = ratio(out["on"]["queue_rate"], out["off"]["queue_rate"])
    out["queue_off_before"] = ratio(out["off"]["queue_rate"], out["before"]["queue_rate"])
    return out


# --- 2. dispatch, in a child process per run ---------------------------------------------------------


def dispatch_child(config: Path, calls: int, batches: int) -> dict[str, Any]:
    """The child's measurement (``BENCH_CODE``'s ``dispatcher``): an empty database, then
    ``dispatch()`` ``calls`` times one at a time and ``dispatch_many`` ``batches`` × 500."""
    import yaml

    import dispatcher
    from dispatcher import dispatch, dispatch_many

    raw = yaml.safe_load(config.read_text())
    reset_database(PG_URL)
    data = sample_data()
    with driver_runtime(raw):
        for _ in range(WARMUP_CALLS):
            dispatch(EVENT, data)
        times = []
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            started = time.perf_counter()
            dispatch(EVENT, data)
            times.append(time.perf_counter() - started)
        single_cpu, single_wall = time.process_time() - cpu, time.perf_counter() - wall
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(batches):
            dispatch_many(EVENT, [data] * BATCH)
        bulk_cpu, bulk_wall = time.process_time() - cpu, time.perf_counter() - wall
    if "telemetry" in raw:
        from dispatcher import telemetry

        telemetry.shutdown()  # the spans left, exported before the process ends (not timed)
    return {
        "code": str(Path(dispatcher.__file__).resolve().parent.parent),
        "calls": calls,
        "p50_ms": statistics.median(times) * 1000,
        "events_per_s": calls / single_wall,
        "cpu_ms_per_event": single_cpu * 1000 / calls,
        "bulk_events": batches * BATCH,
        "bulk_events_per_s": batches * BATCH / bulk_wall,
        "bulk_cpu_ms_per_event": bulk_cpu * 1000 / (batches * BATCH),
    }


def dispatch_once(tmp: Path, ctx: Context, mode: str, label: str, sizes: Sizes) -> dict[str, Any]:
    flush_redis()
    config, _raw = our_config(tmp, label, ctx.url, PG_URL, extra=ctx.extra(mode))
    code = ctx.code(mode)
    cmd = [sys.executable, "-m", "bench.scenarios.telemetry", "dispatch", str(config)]
    cmd += [str(sizes.dispatch_calls), str(sizes.dispatch_batches)]
    before, steal = ctx.sink.stats(), steal_seconds()
    env = clean_env(code)
    env["PYTHONPATH"] = str(ROOT)  # bench.harness puts BENCH_CODE first; the directory is neither tree
    child = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=1800)
    if child.returncode != 0:
        raise RuntimeError(f"dispatch child ({label}) exited {child.returncode}:\n{child.stderr[-3000:]}")
    r: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    if Path(r["code"]) != code.resolve():
        raise RuntimeError(f"dispatch child ({label}) imported dispatcher from {r['code']}, not {code}")
    r["steal_s"] = steal_seconds() - steal
    r["exported"] = received(before, ctx.sink.stats())
    r["spans_expected"] = WARMUP_CALLS + r["calls"] + r["bulk_events"] if mode == "on" else 0
    check_exports(mode, r["exported"], f"dispatch ({label})")
    flush_redis()
    return r


def dispatch_rounds(tmp: Path, ctx: Context, sizes: Sizes, rounds: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for round_ in range(rounds):
        for mode in rotation(round_):
            r = dispatch_once(tmp, ctx, mode, f"telemetry-dispatch-{mode}-{round_}", sizes)
            runs[mode].append(r)
            say(
                f"   [{round_ + 1}/{rounds}] dispatch, {mode}: dispatch() {r['events_per_s']:.0f}/s "
                f"(p50 {r['p50_ms']:.2f} ms, CPU {r['cpu_ms_per_event']:.2f} ms/event); dispatch_many "
                f"{r['bulk_events_per_s']:.0f}/s (CPU {r['bulk_cpu_ms_per_event']:.3f} ms/event); "
                f"dispatch spans exported {r['exported']['spans'].get('dispatch', 0)} of {r['spans_expected']}; "
                f"steal {r['steal_s']:.2f} s"
            )
    out: dict[str, Any] = {"rounds": rounds, "calls": sizes.dispatch_calls}
    out["bulk_events"] = sizes.dispatch_batches * BATCH
    keys = ("events_per_s", "p50_ms", "cpu_ms_per_event", "bulk_events_per_s", "bulk_cpu_ms_per_event")
    for mode, results in runs.items():
        out[mode] = {k: median([r[k] for r in results]) for k in keys}
        out[mode]["exported"] = total_exports([r["exported"] for r in results])
        out[mode]["spans_expected"] = sum(r["spans_expected"] for r in results)
        out[mode]["steal_s"] = sum(r["steal_s"] for r in results)
        out[mode]["runs"] = results
    single, bulk = (
        ratios(out, "events_per_s", "events_per_s"),
        ratios(out, "bulk_events_per_s", "bulk_events_per_s"),
    )
    out["single"], out["bulk"] = single, bulk
    return out


# --- the summary ---------------------------------------------------------------------------------


def median(values: list[float | None]) -> float:
    return statistics.median(v or 0.0 for v in values)


def spread(values: list[float | None]) -> float:
    """(max − min) ÷ median: how far one mode's runs vary."""
    xs = [v or 0.0 for v in values]
    return ratio(max(xs) - min(xs), statistics.median(xs))


def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def ratios(out: dict[str, Any], key: str, run_key: str) -> dict[str, Any]:
    """on ÷ off and off ÷ before, of the medians and round by round."""
    result: dict[str, Any] = {}
    for name, a, b in (("on_off", "on", "off"), ("off_before", "off", "before")):
        result[name] = ratio(out[a][key], out[b][key])
        pairs = zip(out[a]["runs"], out[b]["runs"], strict=True)
        result[f"{name}_rounds"] = [ratio(x[run_key] or 0.0, y[run_key] or 0.0) for x, y in pairs]
    return result


def total_exports(each: list[dict[str, Any]]) -> dict[str, Any]:
    spans: Counter[str] = Counter()
    for e in each:
        spans.update(e["spans"])
    keys = ("trace_requests", "trace_bytes", "metric_requests", "metric_bytes")
    return {**{k: sum(e[k] for e in each) for k in keys}, "spans": dict(spans)}


def say_summary(w: dict[str, Any], d: dict[str, Any]) -> None:
    rounds = ", ".join(f"{x:.2f}" for x in w["on_off_rounds"])
    say(
        f"   -> workers: median on {w['on']['rate']:.0f}/s, off {w['off']['rate']:.0f}/s, before "
        f"{w['before']['rate']:.0f}/s; on ÷ off {w['on_off']:.3f} (rounds {rounds}); off ÷ before "
        f"{w['off_before']:.3f} (rounds {', '.join(f'{x:.2f}' for x in w['off_before_rounds'])}); worker CPU/delivery "
        f"on {w['on']['cpu_ms_per_job']:.2f}, off {w['off']['cpu_ms_per_job']:.2f}, before "
        f"{w['before']['cpu_ms_per_job']:.2f} ms; spans exported (on) {w['on']['exported']['spans']}, "
        f"{w['on']['exported']['trace_bytes']:,} B"
    )
    say(
        f"   -> dispatch(): on ÷ off {d['single']['on_off']:.3f}, off ÷ before {d['single']['off_before']:.3f}; "
        f"dispatch_many: on ÷ off {d['bulk']['on_off']:.3f}, off ÷ before {d['bulk']['off_before']:.3f}"
    )


def run(procs: Processes, tmp: Path, url: str | None, sizes: Sizes) -> dict[str, Any]:
    """The sink, the code before; the workers' rounds, then dispatch's; every figure printed."""
    try:
        import dispatcher.telemetry  # noqa: F401 - the code under test must have it
    except ImportError as exc:
        raise SystemExit(f"telemetry scenario: {CODE} has no dispatcher.telemetry (issue 27)") from exc
    size = "quick" if sizes == QUICK else "full"
    n, rounds = DELIVERIES[size], ROUNDS[size]
    receiver = "the run's instant receiver"
    if url is None:
        url, receiver = start_instant_receiver(procs, tmp)
    base, base_note = base_tree(tmp)
    if imported_from(base) != base:
        raise RuntimeError(f"the code before ({base}) does not import its own dispatcher")
    sink = start_sink(procs)
    ctx = Context(url, sink, base)
    say(f"telemetry: before = {base_note}; OTLP sink {sink.url}; sample_ratio {SAMPLE_RATIO}")
    say(
        f"telemetry: {n} deliveries, {DRAIN_WORKERS} burst workers, before / off / on, {rounds} rounds rotating"
    )
    steal = steal_seconds()
    out: dict[str, Any] = {"receiver": receiver, "base": base_note, "sample_ratio": SAMPLE_RATIO}
    try:
        out["workers"] = worker_rounds(procs, tmp, ctx, n, rounds)
        say(f"telemetry: dispatch in a child process per run, {DISPATCH_ROUNDS[size]} rounds rotating")
        out["dispatch"] = dispatch_rounds(tmp, ctx, sizes, DISPATCH_ROUNDS[size])
    finally:
        procs.stop([sink.proc])
    out["steal_s"] = steal_seconds() - steal
    say_summary(out["workers"], out["dispatch"])
    flush_redis()
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "sink":
        asyncio.run(serve_sink(int(sys.argv[2])))
    elif len(sys.argv) == 5 and sys.argv[1] == "dispatch":
        print(json.dumps(dispatch_child(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))), flush=True)
    else:
        raise SystemExit(
            "usage: python -m bench.scenarios.telemetry sink PORT | dispatch CONFIG CALLS BATCHES"
        )
