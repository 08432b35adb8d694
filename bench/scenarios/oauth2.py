"""Issue 24's measure of OAuth2 partner connections: 4 burst workers drain a backlog (2,000
deliveries; 400 with ``--quick``) to a key-only endpoint and to an oauth2 endpoint
(``client_secret_basic``, tokens living 60 s), and the token endpoint counts its requests.

Both partners are one server implementation, ``tests/token_server.py``'s ``TokenServer``, each
in a child process of its own (``python -m bench.scenarios.oauth2 serve PORT_FILE check|open``):
the oauth2 partner answers 200 only to ``Authorization: Bearer <a live token>`` (else 401); the
key-only partner runs the same code with that check off. So the two runs differ by the token and
nothing else. Each run is measured as the drain scenario is: the queue-measured steady rate and
first claim → last record from the database (the figure compared), with the 4 workers' CPU
per delivery, the time from the first claim to the first answer (where the first token fetch
shows) and the rate from the first answer to the last (the sending alone). The two alternate, ``ROUNDS`` times each (key-only first in odd rounds, oauth2 first in
even ones); the ratio compared is of the medians, and the median of each round's own ratio and
the ratio of the workers' CPU per delivery are shown beside it.
Every run starts from an empty Redis DB 4 and 4 fresh worker processes, so every oauth2 run
fetches its first token: the token requests per minute are a run's requests over
max(1, its minutes from starting the workers to the last one exiting).
"""

from __future__ import annotations

import importlib.util
import json
import signal
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from types import ModuleType
from typing import Any

import requests
import sqlalchemy as sa
import yaml

from bench.harness import DRAIN_WORKERS, PG_URL, QUEUE_NAME, QUICK, ROOT, Sizes, say
from bench.harness.driver import (
    attempt_summary,
    db_engine,
    delivery_counts,
    driver_runtime,
    our_config,
    queue_backlog,
    reset_database,
)
from bench.harness.processes import Processes, child_env, our_worker, tail
from bench.harness.procfs import cpu_seconds
from bench.harness.services import flush_redis, redis_client, watch_drain
from dispatcher import store
from dispatcher.vocabulary import DeliveryStatus

EXPIRES_IN = 60
"""The lifetime of the tokens the token endpoint issues, in seconds (issue 24)."""
DELIVERIES = {"quick": 400, "full": 2000}
ROUNDS = {"quick": 3, "full": 8}
"""Runs of each mode, alternating: one run of 2,000 lasts about 1.5 s and runs of one mode vary
by ±15 % on the shared 2-core machine, so fewer rounds cannot tell a 5 % difference."""
CLIENT_ID = "bench-clinic"
CLIENT_SECRET = "bench-client-secret-not-a-real-one"
STATS_PATH = "/bench/stats"
TOKEN_SERVER = ROOT / "tests" / "token_server.py"
MODES = ("key_only", "oauth2")


# --- the partner, in its child process -----------------------------------------------------------


def token_server_module() -> ModuleType:
    """``tests/token_server.py`` of this checkout, loaded by its path (so ``BENCH_CODE``'s
    ``tests`` package, if any, is not the one used)."""
    name = "bench_token_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TOKEN_SERVER)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {TOKEN_SERVER}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def partner_server(check: bool) -> Any:
    """A started ``TokenServer`` (tokens live :data:`EXPIRES_IN`) knowing the bench client, with
    ``GET /bench/stats``; with ``check`` off its partner answers 200 to every POST, recording
    it as the checking partner does."""
    ts = token_server_module()

    class Partner(ts.TokenServer):  # type: ignore[misc,name-defined]
        def answer_partner(self, headers: dict[str, str], body: bytes) -> int:
            if check:
                return int(super().answer_partner(headers, body))
            with self.lock:
                self.partner_requests.append(ts.PartnerRequest(headers, body, 200))
            return 200

    server = Partner(expires_in=EXPIRES_IN)
    server.register_secret(CLIENT_ID, CLIENT_SECRET, "client_secret_basic")
    add_stats(server)
    return server


def stats_of(server: Any) -> dict[str, Any]:
    """The token requests and the partner's answers so far, by status (counts only)."""
    with server.lock:
        tokens = [r.status for r in server.requests]
        partner = [r.status for r in server.partner_requests]
    return {
        "token_requests": len(tokens),
        "token_refused": sum(1 for s in tokens if s != 200),
        "partner": {str(s): partner.count(s) for s in sorted(set(partner))},
    }


def add_stats(server: Any) -> None:
    """``GET /bench/stats`` on the server's own port: :func:`stats_of` as JSON."""
    base = server.server.RequestHandlerClass

    class WithStats(base):  # type: ignore[misc,valid-type]
        def do_GET(self) -> None:
            if self.path != STATS_PATH:
                self._send(404, b"{}", {})
                return
            self._send(200, json.dumps(stats_of(server)).encode(), {})

    server.server.RequestHandlerClass = WithStats  # read per connection: effective at once


def serve(port_file: Path, check: bool) -> None:
    """The child process: starts the server, writes its base URL to ``port_file``, serves until
    SIGTERM or SIGINT."""
    server = partner_server(check)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    written = port_file.with_suffix(".tmp")
    written.write_text(json.dumps({"base_url": server.base_url}))
    written.replace(port_file)
    print(f"listening on {server.base_url} check={check} expires_in={EXPIRES_IN}", flush=True)
    while not stop.wait(1):
        pass
    server.close()


# --- the partner, seen from the benchmark --------------------------------------------------------


@dataclass
class Partner:
    check: bool
    proc: Popen[bytes]
    base_url: str

    @property
    def url(self) -> str:
        return f"{self.base_url}/partner/hooks"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/token"

    def stats(self) -> dict[str, Any]:
        response = requests.get(self.base_url + STATS_PATH, timeout=5)
        response.raise_for_status()
        return dict(response.json())


def start_partner(procs: Processes, tmp: Path, check: bool) -> Partner:
    """The partner's child process, waited for (15 s at most), and checked: the oauth2 partner
    answers 401 to a POST without a token, the key-only one 200."""
    name = "partner-oauth2" if check else "partner-key-only"
    port_file = tmp / f"{name}.json"
    env = child_env()
    env["PYTHONPATH"] = str(ROOT)  # this checkout's bench/ (it puts the code under test after)
    cmd = [
        sys.executable,
        "-m",
        "bench.scenarios.oauth2",
        "serve",
        str(port_file),
        "check" if check else "open",
    ]
    proc = procs.start(name, cmd, env)
    deadline = time.monotonic() + 15
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start:\n{tail(proc)}")
        time.sleep(0.05)
    partner = Partner(check, proc, json.loads(port_file.read_text())["base_url"])
    answer = requests.post(partner.url, data=b'{"ping":1}', timeout=5).status_code
    if answer != (401 if check else 200):
        raise RuntimeError(f"{name} answered {answer} to a POST without a token")
    return partner


# --- one run ---------------------------------------------------------------------------------


def oauth2_auth(partner: Partner) -> dict[str, Any]:
    return {
        "oauth2": {
            "token_url": partner.token_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "method": "client_secret_basic",
        }
    }


def answer_times(engine: sa.Engine) -> dict[str, float | None]:
    """From the attempt rows (``created_at`` is when a POST's answer was read): milliseconds
    from the first claim to the first answer (the first token fetch is in it), the rate from the
    first answer to the last (the sending, with no start-up in it) and the mean POST duration
    (the token fetch included for the POSTs that waited for it)."""
    a = store.ATTEMPTS.c
    with engine.connect() as conn:
        claimed = conn.execute(sa.select(sa.func.min(store.DELIVERIES.c.attempt_started_at))).scalar_one()
        rows, first, last, post_ms = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.min(a.created_at),
                sa.func.max(a.created_at),
                sa.func.avg(a.duration_ms),
            )
        ).one()
    span = (last - first).total_seconds() if first is not None and last is not None else 0.0
    return {
        "first_record_ms": (first - claimed).total_seconds() * 1000 if claimed and first else None,
        "answered_rate": (rows - 1) / span if span > 0 else None,
        "post_ms": float(post_ms) if post_ms is not None else None,
    }


def drain_once(procs: Processes, tmp: Path, label: str, partner: Partner, n: int) -> dict[str, Any]:
    """``n`` deliveries queued, then drained by 4 burst workers starting together."""
    flush_redis()
    reset_database(PG_URL)
    config, raw = our_config(tmp, label, partner.url, PG_URL)
    if partner.check:
        raw["endpoints"][0]["auth"] = oauth2_auth(partner)
        config.write_text(yaml.safe_dump(raw, sort_keys=False))
    with driver_runtime(raw):  # parses the configuration again, auth included
        queue_backlog(n)
    conn = redis_client()
    before, partner_cpu = partner.stats(), cpu_seconds(partner.proc.pid)
    workers = [our_worker(procs, config, f"{label}-{i}", burst=True) for i in range(DRAIN_WORKERS)]
    try:
        result = watch_drain(conn, f"rq:queue:{QUEUE_NAME}", workers, n, timeout=max(300, n / 10))
    finally:
        procs.stop(workers)
        conn.close()
    after, partner_cpu = partner.stats(), cpu_seconds(partner.proc.pid) - partner_cpu
    engine = db_engine(PG_URL)
    counts, summary = delivery_counts(engine), attempt_summary(engine)
    result.update(answer_times(engine))
    engine.dispose()
    result.update(summary, statuses=counts, workers=DRAIN_WORKERS)
    result["db_rate"] = n / summary["db_span_s"] if summary.get("db_span_s") else None
    result["partner_cpu_ms_per_delivery"] = partner_cpu * 1000 / n
    result["token_requests"] = after["token_requests"] - before["token_requests"]
    result["token_refused"] = after["token_refused"] - before["token_refused"]
    result["partner_401"] = after["partner"].get("401", 0) - before["partner"].get("401", 0)
    result["tokens_per_minute"] = result["token_requests"] / max(1.0, result["wall_s"] / 60)
    result["all_delivered_once"] = (
        counts.get(DeliveryStatus.DELIVERED) == n
        and summary["attempt_rows"] == n
        and summary["distinct_deliveries"] == n
    )
    return result


# --- the scenario ------------------------------------------------------------------------------


def median(values: list[float | None]) -> float:
    return statistics.median(v or 0.0 for v in values)


def summarise(runs: dict[str, list[dict[str, Any]]], n: int) -> dict[str, Any]:
    """Each mode's median figures and runs, the ratios of the medians (and of each round), the
    token counts."""
    out: dict[str, Any] = {"n": n, "workers": DRAIN_WORKERS, "rounds": len(runs["oauth2"])}
    out["expires_in"] = EXPIRES_IN
    for mode, results in runs.items():
        out[mode] = {
            "rate": median([r["db_rate"] for r in results]),
            "queue_rate": median([r["rate"] for r in results]),
            "cpu_ms_per_job": median([r["cpu_ms_per_job"] for r in results]),
            "partner_cpu_ms_per_delivery": median([r["partner_cpu_ms_per_delivery"] for r in results]),
            "answered_rate": median([r["answered_rate"] for r in results]),
            "first_record_ms": median([r["first_record_ms"] for r in results]),
            "post_ms": median([r["post_ms"] for r in results]),
            "load_average_1m": [r["load_average_1m"] for r in results],
            "all_delivered_once": all(r["all_delivered_once"] for r in results),
            "partner_401": sum(r["partner_401"] for r in results),
            "runs": results,
        }
    oauth2, key_only = out["oauth2"], out["key_only"]
    out["ratio"] = oauth2["rate"] / key_only["rate"] if key_only["rate"] else 0.0
    out["queue_ratio"] = oauth2["queue_rate"] / key_only["queue_rate"] if key_only["queue_rate"] else 0.0
    out["answered_ratio"] = (
        oauth2["answered_rate"] / key_only["answered_rate"] if key_only["answered_rate"] else 0.0
    )
    pairs = zip(oauth2["runs"], key_only["runs"], strict=True)
    out["round_ratios"] = [(a["db_rate"] or 0.0) / (b["db_rate"] or 1.0) for a, b in pairs]
    out["cpu_ratio"] = (
        oauth2["cpu_ms_per_job"] / key_only["cpu_ms_per_job"] if key_only["cpu_ms_per_job"] else 0.0
    )
    out["token_requests"] = [r["token_requests"] for r in oauth2["runs"]]
    out["token_wall_s"] = [r["wall_s"] for r in oauth2["runs"]]
    out["tokens_per_minute"] = max(r["tokens_per_minute"] for r in oauth2["runs"])
    out["token_refused"] = sum(r["token_refused"] for r in oauth2["runs"])
    return out


def one_run(r: dict[str, Any]) -> str:
    """One run's figures, for the progress lines."""
    return (
        f"{r['db_rate'] or 0:.0f}/s first claim → last record, {r['rate']:.0f}/s by the queue, "
        f"{r['answered_rate'] or 0:.0f}/s first → last answer; worker CPU {r['cpu_ms_per_job'] or 0:.2f} "
        f"ms/delivery, partner {r['partner_cpu_ms_per_delivery']:.2f}; first answer after "
        f"{r['first_record_ms'] or 0:.0f} ms; POST {r['post_ms'] or 0:.1f} ms mean; token requests "
        f"{r['token_requests']} in {r['wall_s']:.1f} s; 401s {r['partner_401']}; all delivered once: "
        f"{r['all_delivered_once']}; load {r['load_average_1m']:.1f}"
    )


def run(procs: Processes, tmp: Path, url: str | None, sizes: Sizes) -> dict[str, Any]:
    """Key-only and oauth2, alternating, :data:`ROUNDS` times each; every figure printed."""
    size = "quick" if sizes == QUICK else "full"
    n, rounds = DELIVERIES[size], ROUNDS[size]
    say(
        f"oauth2: {n} deliveries, {DRAIN_WORKERS} burst workers, key-only vs oauth2 (tokens live "
        f"{EXPIRES_IN} s), {rounds} rounds alternating"
    )
    partners = {"key_only": start_partner(procs, tmp, check=False)}
    partners["oauth2"] = start_partner(procs, tmp, check=True)
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    try:
        for round_ in range(rounds):
            for mode in MODES if round_ % 2 == 0 else MODES[::-1]:
                r = drain_once(procs, tmp, f"oauth2-{mode}-{round_}", partners[mode], n)
                runs[mode].append(r)
                say(f"   [{round_ + 1}/{rounds}] {mode}: {one_run(r)}")
    finally:
        procs.stop([p.proc for p in partners.values()])
    flush_redis()
    out = summarise(runs, n)
    say(
        f"   -> median key-only {out['key_only']['rate']:.0f}/s, oauth2 {out['oauth2']['rate']:.0f}/s: "
        f"ratio {out['ratio']:.3f} (by the queue {out['queue_ratio']:.3f}, first → last answer "
        f"{out['answered_ratio']:.3f}, rounds "
        f"{', '.join(f'{x:.2f}' for x in out['round_ratios'])}; worker CPU/delivery "
        f"{out['cpu_ratio']:.3f}); token requests per run "
        f"{out['token_requests']}, at most {out['tokens_per_minute']:.2f}/min"
    )
    return out


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "serve" or sys.argv[3] not in ("check", "open"):
        raise SystemExit("usage: python -m bench.scenarios.oauth2 serve PORT_FILE check|open")
    serve(Path(sys.argv[2]), sys.argv[3] == "check")
