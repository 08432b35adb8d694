"""The report of a run: its markdown (one section per scenario, then the targets table), the
slow-receiver chart, and the results table in ``bench/README.md``. Reads only the results
dict (what ``bench/results/*.json`` holds), so it renders any run's JSON again."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import README, THREADS_PER_PROCESS, say

Lines = list[str]
Target = tuple[str, str, bool | None]


def render(results: dict[str, Any]) -> str:
    lines = header(results)
    for key, section in SECTIONS:
        if results.get(key):
            lines += section(results[key])
    lines += ["## Targets (issue 5)", "", "| target | measured | met |", "|---|---|---|"]
    for target, measured, ok in targets(results):
        lines.append(f"| {target} | {measured} | {verdict(ok)} |")
    lines.append("")
    return "\n".join(lines)


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def header(results: dict[str, Any]) -> Lines:
    m = results["machine"]
    return [
        f"# Benchmark results ({results['mode']})",
        "",
        f"- command: `{results['command']}`",
        f"- date: {results['date']}, took {results['elapsed_s']:.0f} s",
        f"- code under test: {m['code']}",
        f"- machine: nproc {m['nproc']}, CPU {m['cpu']}, Linux {m['kernel']}, "
        f"load average at start {m['load_average_at_start']}",
        f"- Python {m['python']}, RQ {m['rq']}, redis-server {m['redis_server']}, PostgreSQL {m['postgresql']}",
        f"- instant receiver: {m['receiver_instant']}; slow receiver: {m['receiver_slow']}",
        "- worker scenarios use PostgreSQL (database `bench`) unless marked SQLite; Redis DB 4",
        "",
    ]


# --- one section per scenario -----------------------------------------------------------------


WORKER_ROWS = [
    ("ours: `python worker.py --burst`, PostgreSQL", "ours_pg"),
    ("ours: `python worker.py --burst`, SQLite", "ours_sqlite"),
    ("(a) RQ floor: `SimpleWorker`, no-op job", "floor"),
    ("(b) naive: forking `rq.Worker`, `requests.post`", "naive"),
    ("(c) HTTP ceiling: bare `requests.Session` loop", "ceiling"),
]


def worker_section(w: dict[str, Any]) -> Lines:
    ours = w["ours_pg"]["rate"]
    lines = [
        "## 1. Per worker process, instant receiver",
        "",
        f"Each runner {w['repeats']}×, interleaved; the best run is shown and used in the ratios. "
        "CPU ms/job, steady, wall and load average are those of the best run.",
        "",
        "| runner | jobs | per second (best) | all runs /s | CPU ms/job | steady (s) "
        "| wall incl. start-up (s) | load avg | ours (PG) ÷ this |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, key in WORKER_ROWS:
        r = w[key]
        cpu = f"{r['cpu_ms_per_job']:.1f}" if r.get("cpu_ms_per_job") is not None else "-"
        lines.append(
            f"| {label} | {r['n']} | {r['rate']:.0f} | {', '.join(f'{x:.0f}' for x in r['all_rates'])} "
            f"| {cpu} | {r['steady_s']:.2f} | {r['wall_s']:.2f} "
            f"| {r['load_average_1m']:.1f} | {ours / r['rate']:.2f} |"
        )
    ra = w["ratios"]
    lines += [
        "",
        f"Ratios (PostgreSQL): ours/floor **{ra['ours_over_floor']:.2f}**, ours/naive "
        f"**{ra['ours_over_naive']:.2f}**, ours/ceiling **{ra['ours_over_ceiling']:.2f}**. "
        f"SQLite: {ra['sqlite_over_floor']:.2f}, {ra['sqlite_over_naive']:.2f}, "
        f"{ra['sqlite_over_ceiling']:.2f}.",
        "",
    ]
    db_rates = [w[k].get("db_rate") for k in ("ours_pg", "ours_sqlite")]
    if all(db_rates):
        lines += [
            "A batch takes jobs off the queue before it sends them, so ours is also measured by "
            "its attempt rows (first → last `created_at`, same best run): PostgreSQL "
            f"{db_rates[0]:.0f}/s, SQLite {db_rates[1]:.0f}/s.",
            "",
        ]
    return lines


def slow_row(r: dict[str, Any]) -> str:
    note = []
    if r["starved"]:
        note.append("queue ran dry")
    if r["alive_at_end"] != r["workers"]:
        note.append(f"{r['workers'] - r['alive_at_end']} died")
    if r.get("processes_only"):
        note.append("comparison: one thread per process (not a target row)")
    if r["helper_processes"]:
        note.append(f"+{r['helper_processes']} scheduler proc {r['helper_rss_mib']:.0f} MiB")
    cpu = r["cpu_ms_per_delivery"]
    return (
        f"| {r.get('concurrency', r['workers'])} | {r['workers']} × {r.get('threads', 1)} "
        f"| {r['rate']:.1f} | {r['ideal']:.0f} | {r['ratio']:.2f} "
        f"| {r['rss_mib_mean']:.1f} / {r['rss_mib_max']:.1f} | {r['pss_mib_mean']:.1f} "
        f"| {'-' if cpu is None else f'{cpu:.1f}'} | {r['cpu_cores_busy']:.2f} "
        f"| {r['startup_s']:.1f} | {'; '.join(note)} |"
    )


def slow_section(s: dict[str, Any]) -> Lines:
    return [
        f"## 2. Slow receivers ({s['delay_ms']:.0f} ms per answer), PostgreSQL",
        "",
        "| concurrent deliveries N | processes × threads | deliveries/s | ideal N×10/s | ÷ ideal "
        "| RSS/worker process MiB (mean / max) | PSS/worker MiB | CPU ms/delivery | CPU cores busy "
        "| start-up (s) | note |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *(slow_row(r) for r in s["rounds"]),
        "",
        "Chart: `bench/results/slow_receivers.png`.",
        "",
    ]


def dispatch_section(d: dict[str, Any]) -> Lines:
    lines = [
        "## 3. Dispatch (one endpoint, so one delivery per event)",
        "",
        "| database | `dispatch()` p50 ms | p99 ms | `dispatch()` events/s | `dispatch_many` (500/batch) events/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for label in ("sqlite", "postgresql"):
        r = d[label]
        lines.append(
            f"| {'SQLite' if label == 'sqlite' else 'PostgreSQL'} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['events_per_s']:.0f} | {r['bulk_events_per_s']:.0f} |"
        )
    lines.append("")
    return lines


def drain_section(b: dict[str, Any]) -> Lines:
    return [
        "## 4. Backlog drain, PostgreSQL, instant receiver",
        "",
        "| deliveries | worker processes | drain from start (s) | deliveries/s | steady deliveries/s "
        "| first claim → last record (s) | all delivered exactly once |",
        "|---:|---:|---:|---:|---:|---:|---|",
        f"| {b['n']} | {b['workers']} | {b['wall_s']:.1f} | {b['n'] / b['wall_s']:.0f} | {b['rate']:.0f} "
        f"| {b['db_span_s']:.1f} | {'yes' if b['all_delivered_once'] else '**no**'} |",
        "",
        f"Queuing the backlog with `dispatch_many` took {b['dispatch_many_s']:.1f} s "
        f"({b['n'] / b['dispatch_many_s']:.0f} events/s).",
        "",
    ]


def cli_section(c: dict[str, Any]) -> Lines:
    lines = [
        "## 5. CLI start-up, warm bytecode cache",
        "",
        f"`{c['invocation']}` started in {c['cwd']} (the code under test); each command run "
        f"{c['warmup_runs']}× to warm up, then {c['runs']}× timed from start to exit. {c['database']}. "
        f"A bare `python -c pass` takes {c['python_startup_s']:.3f} s (median).",
        "",
        "| command | median (s) | min (s) | max (s) | target (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in c["commands"].values():
        lines.append(
            f"| `{r['command']}` | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} "
            f"| ≤ {r['target_s']:g} |"
        )
    lines.append("")
    return lines


def encryption_section(e: dict[str, Any]) -> Lines:
    lines = [
        "## 6. Encryption at rest: without storage keys and with one",
        "",
        "| measure | without | with a storage key | change |",
        "|---|---:|---:|---:|",
    ]
    for label, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        plain, sealed = e["dispatch"][f"{label}-plain"], e["dispatch"][f"{label}-sealed"]
        for key, what, unit in (
            ("p50_ms", "`dispatch()` p50", "ms"),
            ("bulk_events_per_s", "`dispatch_many`", "events/s"),
        ):
            fmt = "{:.2f}" if unit == "ms" else "{:.0f}"
            lines.append(
                f"| {what}, {name} ({unit}) | {fmt.format(plain[key])} | {fmt.format(sealed[key])} "
                f"| {(sealed[key] / plain[key] - 1) * 100:+.0f}% |"
            )
    plain, sealed = e["worker"]["plain"]["rate"], e["worker"]["sealed"]["rate"]
    lines += [
        f"| one burst worker, PostgreSQL (deliveries/s) | {plain:.0f} | {sealed:.0f} | {(sealed / plain - 1) * 100:+.0f}% |",
        "",
    ]
    return lines


def ordering_section(o: dict[str, Any]) -> Lines:
    lat = o["latency"]
    lines = [
        "## 7. Per-key ordering and idempotent dispatch (PostgreSQL)",
        "",
        f"End to end, `dispatch()` called to the partner having read the POST, {lat['unordered']['rate']} "
        f"events/s from one backend process to one worker ({lat['unordered']['events']} events; ordered: "
        "20 keys in turn):",
        "",
        "| endpoint | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for label in ("unordered", "ordered"):
        r = lat[label]
        lines.append(
            f"| {label} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} |"
        )
    base = o["backlog"]["unordered"]["rate"]
    lines += [
        "",
        f"A backlog of {o['backlog']['unordered']['n']:,} deliveries drained by {o['backlog']['unordered']['workers']} "
        "workers (first claim to last record):",
        "",
        "| endpoint | deliveries/s | of unordered |",
        "|---|---:|---:|",
    ]
    for key, label in (
        ("unordered", "unordered"),
        ("1000", "ordered, 1,000 keys"),
        ("10", "ordered, 10 keys"),
    ):
        r = o["backlog"][key]
        lines.append(f"| {label} | {r['rate']:.0f} | {r['rate'] / base * 100:.0f}% |")
    lines += ["", "| `dispatch()` | p50 ms |", "|---|---:|"]
    for label, r in o["idempotency"].items():
        lines.append(f"| {label} | {r['p50_ms']:.2f} |")
    lines.append("")
    return lines


def console_section(c: dict[str, Any]) -> Lines:
    dbs = [
        (label, name) for label, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")) if c.get(label)
    ]
    filled = ", ".join(
        f"{name} {c[label]['rows']:,} rows stored in {c[label]['fill_s']:.0f} s" for label, name in dbs
    )
    lines = [
        "## 8. Operator console pages (server time, Starlette test client, signed in)",
        "",
        f"Each page requested 30× after 3 warm-up requests; target p95 ≤ {c['target_ms']:g} ms. {filled}.",
        "",
        "| page | " + " | ".join(f"{name} p50 ms | {name} p95 ms" for _, name in dbs) + " |",
        "|---|" + "---:|---:|" * len(dbs),
    ]
    for page in c[dbs[0][0]]["pages"]:
        cells = []
        for label, _ in dbs:
            r = c[label]["pages"].get(page)
            cells += ["-", "-"] if r is None else [f"{r['p50_ms']:.1f}", _over(r["p95_ms"], c["target_ms"])]
        lines.append(f"| {page} | " + " | ".join(cells) + " |")
    lines += ["| rows | " + " | ".join(f"{c[label]['rows']:,} | " for label, _ in dbs) + " |", ""]
    for label, name in dbs:
        extra = c[label].get("pages_with_proposed_indexes")
        if extra:
            lines += [
                f"{name} with the proposed indexes: "
                + "; ".join(f"{page} p95 {r['p95_ms']:.1f} ms" for page, r in extra.items())
                + ".",
                "",
            ]
    return lines


def _over(p95: float, target: float) -> str:
    return f"{p95:.1f}" if p95 <= target else f"**{p95:.1f}**"


def network_section(n: dict[str, Any]) -> Lines:
    lines = ["## 9. Worker hosts across a network, and the Sentinel failover gap (issue 15 §3)", ""]
    if n.get("skipped"):
        return [*lines, f"Skipped: {n['skipped']}", ""]
    t = n["throughput"]
    if t.get("skipped"):
        lines += [f"Throughput across hosts skipped: {t['skipped']}", ""]
    else:
        lines += [
            f"Each worker host a network namespace on a bridge, running `python worker.py --concurrency "
            f"{t['concurrency']}` ({t['threads']} threads per process); Redis (DB {t['redis_db']}) and "
            f"PostgreSQL reached through a proxy on the bridge adding {t['proxy_delay_ms']:g} ms each way; "
            f"the receiver ({t['receiver']}) on the bridge address answers 200 after "
            f"{t['receiver_delay_ms']:g} ms. The workers start and register first, then "
            f"{t['events']:,} events are queued with `dispatch_many`; the rate is from the first "
            "delivery to the last, as the receiver read them. Each host count is run "
            f"{t.get('repeats', 1)}×, interleaved; the best run is shown, with its CPU in cores busy over "
            f"that span (of {t['nproc']}), from `/proc`: all cores (`/proc/stat`) and per process; *other* "
            "is CPU busy in none of those processes (the kernel's bridge and veth work, the readings "
            "themselves, anything else running on the machine).",
            "",
            "| hosts | worker processes | deliveries | first → last (s) | deliveries/s | all runs /s "
            "| ideal (in flight ÷ delay) "
            "| CPU busy, all | workers | receiver | bench process (proxies) | redis-server | PostgreSQL "
            "| other | saturated |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in t["rounds"]:
            cpu = r["cpu"]
            lines.append(
                f"| {r['hosts']} | {r['worker_processes']} | {r['delivered']} | {r['span_s']:.2f} "
                f"| {r['rate']:.0f} | {', '.join(f'{x:.0f}' for x in r.get('all_rates', [r['rate']]))} "
                f"| {r['ideal']:.0f} | {cpu['total']:.2f} | {cpu['workers']:.2f} "
                f"| {cpu['receiver']:.2f} | {cpu['bench']:.2f} | {cpu['redis']:.2f} | {cpu['postgresql']:.2f} "
                f"| {cpu['other']:.2f} | {r['saturated']} |"
            )
        lines.append("")
    f = n["failover"]
    if f.get("skipped"):
        lines += [f"Sentinel failover skipped: {f['skipped']}", ""]
        return lines
    lines += [
        f"Sentinel failover: a primary, a replica and three Sentinels (down after {f['down_after_ms']} ms), "
        f"{f['workers']} workers on loopback, `dispatch()` at {f['rate']}/s from the benchmark process; "
        "the primary is SIGKILLed. Seconds from the kill:",
        "",
        "| run | Sentinels name the new primary | first delivery of an event dispatched after the kill "
        "| longest `dispatch()` call | dispatched | refused | delivered | workers alive after |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(f["runs"], 1):
        lines.append(
            f"| {i} | {r['named_s']:.2f} | {r['first_delivery_s']:.2f} | {r['longest_dispatch_s']:.2f} "
            f"| {r['dispatched']} | {r['refused']} | {r['delivered']} | {r['workers_alive_at_end']} of {f['workers']} |"
        )
    lines += [
        f"| median | {f['median_named_s']:.2f} | {f['median_first_delivery_s']:.2f} | | | | | |",
        "",
    ]
    for i, r in enumerate(f["runs"], 1):
        late = [x for x in r.get("late") or [] if x["delivered_s"] is not None]
        if late:
            sent = [x["dispatched_s"] for x in late]
            got = [x["delivered_s"] for x in late]
            lines.append(
                f"- Run {i}: {len(late)} event(s) delivered more than 5 s after their `dispatch()`: dispatched "
                f"{min(sent):+.2f} … {max(sent):+.2f} s from the kill, delivered {min(got):.1f} … {max(got):.1f} s "
                "after it (`dispatch()` stores the delivery and leaves its queuing to reconcile while Redis "
                "has no primary)."
            )
    for i, r in enumerate(f["runs"], 1):
        for s in r.get("stuck") or []:
            lines.append(
                f"- Run {i}: `{s['request_id']}` (dispatched {s['dispatched_s']:+.2f} s from the kill) not "
                f"delivered {f.get('final_wait_s', '?')} s after the load stopped: database `{s['db_status']}` "
                f"({s['db_attempts']} attempts), job on the new primary `{s['job_status']}`"
                f"{' in the queue' if s['in_queue'] else ''}"
                f"{' in ' + ', '.join(s['registries']) if s['registries'] else ''}."
            )
    lines.append("")
    return lines


def profile_section(p: dict[str, Any]) -> Lines:
    lines = [
        "## Profile: one burst worker under py-spy (PostgreSQL, instant receiver)",
        "",
        f"GIL-holding samples (Python CPU on every thread, waiting excluded), {p['rate_hz']} Hz; "
        f"{p['deliveries']} deliveries, {p['ms_per_delivery']:.2f} ms per delivery. Details: "
        "`bench/results/profile.md`, stacks: `bench/results/profile-folded.txt`.",
        "",
        "| share | ms/delivery | where |",
        "|---:|---:|---|",
    ]
    for g in sorted(p["groups"], key=lambda g: -g["share"]):
        lines.append(f"| {g['share'] * 100:.1f}% | {g['ms_per_delivery']:.2f} | {g['name']} |")
    lines.append("")
    return lines


def oauth2_section(o: dict[str, Any]) -> Lines:
    lines = [
        "## 10. OAuth2 partner connections (issue 24), PostgreSQL",
        "",
        f"{o['n']} deliveries drained by {o['workers']} burst workers, to a key-only endpoint and to an "
        f"oauth2 endpoint (`client_secret_basic`, tokens living {o['expires_in']} s), both served by "
        "`tests/token_server.py` in a child process (the key-only one with the Bearer check off); "
        f"alternating, {o['rounds']}× each, medians. Every run starts from an empty Redis and fresh "
        "workers, so each oauth2 run fetches its first token.",
        "",
        "| endpoint | deliveries/s (first claim → last record) | all runs /s | steady by the queue /s "
        "| first → last answer /s | worker CPU ms/delivery | partner CPU ms/delivery "
        "| first claim → first answer (ms) | POST mean ms | partner 401s | all delivered once | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for key, label in (("key_only", "key only"), ("oauth2", "oauth2")):
        r = o[key]
        rates = ", ".join(f"{x['db_rate'] or 0:.0f}" for x in r["runs"])
        lines.append(
            f"| {label} | {r['rate']:.0f} | {rates} | {r['queue_rate']:.0f} | {r['answered_rate']:.0f} "
            f"| {r['cpu_ms_per_job']:.2f} "
            f"| {r['partner_cpu_ms_per_delivery']:.2f} | {r['first_record_ms']:.0f} | {r['post_ms']:.1f} "
            f"| {r['partner_401']} "
            f"| {'yes' if r['all_delivered_once'] else '**no**'} "
            f"| {', '.join(f'{x:.1f}' for x in r['load_average_1m'])} |"
        )
    runs = ", ".join(f"{n} in {s:.1f} s" for n, s in zip(o["token_requests"], o["token_wall_s"], strict=True))
    lines += [
        "",
        f"oauth2 ÷ key-only: **{o['ratio']:.2f}** (by the queue {o['queue_ratio']:.2f}; first → last "
        f"answer, start-up and the first token fetch left out, {o['answered_ratio']:.2f}; each round: "
        f"{', '.join(f'{x:.2f}' for x in o['round_ratios'])}, median {statistics.median(o['round_ratios']):.2f}; "
        f"workers' CPU per delivery {o['cpu_ratio']:.2f}). Token requests "
        f"per oauth2 run (workers' start to exit): {runs}; per minute (requests ÷ max(1, minutes)) at "
        f"most **{o['tokens_per_minute']:.2f}**; refused: {o['token_refused']}.",
        "",
    ]
    return lines


def breaker_section(b: dict[str, Any]) -> Lines:
    reread, down = b["reread"], b["down"]
    lines = [
        "## 11. The circuit breaker's cost (issue 25), PostgreSQL",
        "",
        f"{b['n']} deliveries drained by {b['workers']} burst workers to an instant receiver "
        f"({b.get('receiver', '-')}), with "
        "`delivery.breaker` on (the default) and `breaker: false`, alternating, "
        f"{b['rounds']}× each, medians.",
        "",
        "| breaker | deliveries/s (first claim → last record) | all runs /s | steady by the queue /s "
        "| worker CPU ms/delivery | all delivered once | load avg |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for key in ("on", "off"):
        r = b[key]
        rates = ", ".join(f"{x['db_rate'] or 0:.0f}" for x in r["runs"])
        lines.append(
            f"| {key} | {r['rate']:.0f} | {rates} | {r['queue_rate']:.0f} | {r['cpu_ms_per_job']:.2f} "
            f"| {'yes' if r['all_delivered_once'] else '**no**'} "
            f"| {', '.join(f'{x:.1f}' for x in r['load_average_1m'])} |"
        )
    lines += [
        "",
        f"on ÷ off: **{b['ratio']:.2f}** (by the queue {b['queue_ratio']:.2f}; each round: "
        f"{', '.join(f'{x:.2f}' for x in b['round_ratios'])}, median "
        f"{statistics.median(b['round_ratios']):.2f}; workers' CPU per delivery {b['cpu_ratio']:.2f}). "
        f"The endpoints' re-read (once a second per worker, breaker on or off): {reread['wall_us']:.0f} µs "
        f"wall, {reread['cpu_us']:.0f} µs CPU per look ({reread['calls']} in a row), "
        f"{reread['core_share_at_1_per_s'] * 100:.3f} % of a core.",
        "",
        f"A partner answering 503 to every POST, `max_attempts: 1`, {down['n']} deliveries, one round each:",
        "",
        "| breaker | POSTs that reached the partner | attempt rows | statuses | breaker at the end | wall (s) |",
        "|---|---:|---:|---|---|---:|",
    ]
    for key in ("on", "off"):
        r = down[key]
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items()))
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r.get("attempts", {}).items()))
        lines.append(
            f"| {key} | {r['posts']} | {r['attempt_rows']} ({kinds}) | {statuses} | {r['breaker']} "
            f"| {r['wall_s']:.1f} |"
        )
    lines.append("")
    return lines


def api_section(a: dict[str, Any]) -> Lines:
    t, f = a["throughput"], a["fixed_rate"]
    lines = [
        "## 12. The HTTP API (issue 26), PostgreSQL",
        "",
        f"`dispatcher api --workers {a['workers']}` (uvicorn, httptools, uvloop) on {a['cores']} cores, "
        f"{a['endpoints']} endpoints for the event (two deliveries stored and queued per event), no "
        f"worker running, `api.rate_limit` {a['rate_limit']['per_second']}/s (on, never reached); "
        f"clients: {a['client']}. `POST /v1/events`, one valid event per request, each with an order "
        f"number of its own, {a['seconds']:.0f} s per phase after a warm-up.",
        "",
        "| phase | events/s accepted (202) | errors | p50 ms | p95 ms | p99 ms | max ms "
        "| server CPU s (ms/event) | clients CPU s | PostgreSQL CPU s | redis-server CPU s | other CPU s "
        "| stolen by the host s | cores busy | new connections to `bench` | client connections per API worker |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, r in (
        (f"{a['clients']} clients, closed loop", t),
        (f"{f['rate']:.0f}/s open loop ({f['connections']} connections)", f),
    ):
        per = r["server_cpu_ms_per_event"]
        lines.append(
            f"| {label} | {r['events_per_s']:.0f} | {r['errors']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['server_cpu_s']:.2f} ({per or 0:.2f}) "
            f"| {r['client_cpu_s']:.2f} | {r['postgresql_cpu_s']:.2f} | {r['redis_cpu_s']:.2f} "
            f"| {r['other_cpu_s']:.2f} | {r.get('steal_s', 0):.2f} | {r['cores_busy']:.2f} "
            f"| {r.get('pg_sessions', '-')} "
            f"| {' + '.join(map(str, r.get('connections_per_worker') or [])) or '-'} |"
        )
    s = a["stored"]
    skewed = [label for label, r in (("closed loop", t), ("open loop", f)) if r.get("lopsided")]
    lines += [
        "",
        *(
            [
                f"Lopsided ({', '.join(skewed)}): one API worker held over 75 % of the client "
                "connections (uvicorn's workers share one listening socket and the first to wake "
                "accepts a burst of connections), so the phase measured mostly one worker.",
                "",
            ]
            if skewed
            else []
        ),
        "CPU over each phase from `/proc`: the server's processes (supervisor and workers), the "
        "benchmark process (the clients), PostgreSQL (every process, with the backends that ended; "
        "every database's), the Redis server (every DB's), and *other*: the rest of all cores' busy "
        "time (`/proc/stat`); new connections from `pg_stat_database.sessions`. "
        "Open-loop latency is from each request's scheduled send time to its answer (sent late, "
        f"p99: {f.get('sent_late_p99_ms', 0):.2f} ms). Database afterwards: {s['deliveries_stored']} "
        f"deliveries for {s['accepted_total']} accepted events ({'2 each' if s['ok'] else '**not 2 each**'}).",
        "",
    ]
    p = a.get("profile")
    if p:
        lines += [
            f"Throughput under target: py-spy (GIL-holding samples, {p['rate_hz']} Hz) on both workers "
            f"for one more round ({p['round']['events_per_s']:.0f}/s under py-spy), "
            f"{p['ms_per_event'] or 0:.2f} ms of Python CPU per event; `bench/results/api-profile.md`.",
            "",
            "| share | where |",
            "|---:|---|",
        ]
        lines += [f"| {g['share'] * 100:.1f}% | {g['name']} |" for g in p["groups"]]
        lines.append("")
    return lines


def telemetry_section(t: dict[str, Any]) -> Lines:
    w = t["workers"]
    lines = [
        "## 13. Traces' cost (issue 27), PostgreSQL",
        "",
        f"Three modes, rotating: **before**, the code before issue 27 ({t['base']}); **off**, the code "
        "under test without `telemetry`; **on**, `telemetry: {otlp_endpoint: <sink>, sample_ratio: "
        f"{t['sample_ratio']}}}`, exporting over OTLP/HTTP to a sink on 127.0.0.1 (a raw asyncio server "
        "answering 200 with an empty body, counting requests, bytes and spans). "
        f"{w['n']} deliveries drained by {w['workers']} burst workers to an instant receiver "
        f"({t.get('receiver', '-')}), {w['rounds']}× each, medians; in **on** the jobs were dispatched "
        "with tracing on, so each `deliver` span is a child of its `dispatch` span.",
        "",
        "| mode | deliveries/s (first claim → last record) | all runs /s | steady by the queue /s "
        "| worker CPU ms/delivery | spans the workers exported | span bytes (requests) | metrics requests "
        "| all delivered once | host steal s |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    for key in ("before", "off", "on"):
        r, e = w[key], w[key]["exported"]
        rates = ", ".join(f"{x['db_rate'] or 0:.0f}" for x in r["runs"])
        spans = ", ".join(f"{k} {v}" for k, v in sorted(e["spans"].items())) or "none"
        lines.append(
            f"| {key} | {r['rate']:.0f} | {rates} | {r['queue_rate']:.0f} | {r['cpu_ms_per_job']:.2f} "
            f"| {spans} | {e['trace_bytes']:,} ({e['trace_requests']}) | {e['metric_requests']} "
            f"| {'yes' if r['all_delivered_once'] else '**no**'} | {r['steal_s']:.2f} |"
        )
    lines += [
        "",
        f"on ÷ off: **{w['on_off']:.2f}** (by the queue {w['queue_on_off']:.2f}; each round: "
        f"{', '.join(f'{x:.2f}' for x in w['on_off_rounds'])}; worker CPU per delivery {w['cpu_on_off']:.2f}). "
        f"off ÷ before: **{w['off_before']:.2f}** (by the queue {w['queue_off_before']:.2f}; each round: "
        f"{', '.join(f'{x:.2f}' for x in w['off_before_rounds'])}; worker CPU per delivery "
        f"{w['cpu_off_before']:.2f}). One mode's own runs spread (max − min ÷ median): before "
        f"{w['before']['spread']:.2f}, off {w['off']['spread']:.2f}, on {w['on']['spread']:.2f}.",
        "",
    ]
    return lines + telemetry_dispatch_lines(t)


def telemetry_dispatch_lines(t: dict[str, Any]) -> Lines:
    d = t["dispatch"]
    lines = [
        f"`dispatch()` ({d['calls']} calls one at a time) and `dispatch_many` ({d['bulk_events']:,} events in "
        f"batches of 500), PostgreSQL, in a child process per run, {d['rounds']}× each mode, medians "
        "(CPU: the process's, the span processor's thread included):",
        "",
        "| mode | `dispatch()` /s | p50 ms | CPU ms/event | `dispatch_many` /s | CPU ms/event "
        "| `dispatch` spans exported / made | host steal s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in ("before", "off", "on"):
        r = d[key]
        lines.append(
            f"| {key} | {r['events_per_s']:.0f} | {r['p50_ms']:.2f} | {r['cpu_ms_per_event']:.2f} "
            f"| {r['bulk_events_per_s']:.0f} | {r['bulk_cpu_ms_per_event']:.3f} "
            f"| {r['exported']['spans'].get('dispatch', 0):,} / {r['spans_expected']:,} | {r['steal_s']:.2f} |"
        )
    single, bulk = d["single"], d["bulk"]
    lines += [
        "",
        f"`dispatch()` on ÷ off **{single['on_off']:.2f}** (rounds {', '.join(f'{x:.2f}' for x in single['on_off_rounds'])}), "
        f"off ÷ before **{single['off_before']:.2f}** (rounds {', '.join(f'{x:.2f}' for x in single['off_before_rounds'])}); "
        f"`dispatch_many` on ÷ off **{bulk['on_off']:.2f}** (rounds {', '.join(f'{x:.2f}' for x in bulk['on_off_rounds'])}), "
        f"off ÷ before **{bulk['off_before']:.2f}** (rounds {', '.join(f'{x:.2f}' for x in bulk['off_before_rounds'])}). "
        f"Host steal over the whole scenario: {t['steal_s']:.2f} s.",
        "",
    ]
    return lines


SECTIONS: list[tuple[str, Callable[[dict[str, Any]], Lines]]] = [
    ("worker", worker_section),
    ("slow", slow_section),
    ("dispatch", dispatch_section),
    ("drain", drain_section),
    ("cli_startup", cli_section),
    ("encryption", encryption_section),
    ("ordering", ordering_section),
    ("console", console_section),
    ("network", network_section),
    ("oauth2", oauth2_section),
    ("breaker", breaker_section),
    ("api", api_section),
    ("telemetry", telemetry_section),
    ("profile", profile_section),
]
"""(key in the results, its section), in the report's order."""


# --- targets (issue 5) ------------------------------------------------------------------------


def worker_targets(w: dict[str, Any]) -> list[Target]:
    ra = w["ratios"]
    return [
        ("our worker ≥ 0.9× RQ's no-op floor", f"{ra['ours_over_floor']:.2f}×", ra["ours_over_floor"] >= 0.9),
        (
            "our worker ≥ 8× the naive forking worker",
            f"{ra['ours_over_naive']:.2f}×",
            ra["ours_over_naive"] >= 8,
        ),
        (
            "per process ≥ 0.5× the bare HTTP loop (batching)",
            f"{ra['ours_over_ceiling']:.2f}×",
            ra["ours_over_ceiling"] >= 0.5,
        ),
    ]


def slow_targets(s: dict[str, Any]) -> list[Target]:
    threaded = [r for r in s["rounds"] if not r.get("processes_only")]
    worst = min(threaded, key=lambda r: r["ratio"])
    return [
        (
            "slow receivers ≥ 0.85× ideal up to 32 concurrent",
            ", ".join(f"{r.get('concurrency', r['workers'])}: {r['ratio']:.2f}" for r in threaded),
            worst["ratio"] >= 0.85,
        )
    ]


def dispatch_targets(d: dict[str, Any]) -> list[Target]:
    rows: list[Target] = []
    for label, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        rows.append(
            (f"`dispatch()` p50 ≤ 2 ms, {name}", f"{d[label]['p50_ms']:.2f} ms", d[label]["p50_ms"] <= 2)
        )
    for label, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        rate = d[label]["bulk_events_per_s"]
        rows.append((f"`dispatch_many` ≥ 3,000 events/s, {name}", f"{rate:.0f}/s", rate >= 3000))
    return rows


def drain_targets(b: dict[str, Any]) -> list[Target]:
    return [
        (
            f"backlog of {b['n']} drained by {b['workers']} workers (no target; time)",
            f"{b['wall_s']:.1f} s",
            b["all_delivered_once"],
        )
    ]


def cli_targets(c: dict[str, Any]) -> list[Target]:
    help_, show, show_json = (c["commands"][k] for k in ("help", "log_show", "log_show_json"))
    return [
        (
            f"`dispatcher --help` ≤ {help_['target_s']:g} s (median, warm bytecode cache)",
            f"{help_['median_s']:.2f} s",
            help_["met"],
        ),
        (
            f"`dispatcher log show` ≤ {show['target_s']:g} s (median, warm bytecode cache)",
            f"{show['median_s']:.2f} s, `--json` {show_json['median_s']:.2f} s",
            show["met"] and show_json["met"],
        ),
    ]


def console_targets(c: dict[str, Any]) -> list[Target]:
    dbs = [
        (label, name) for label, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")) if c.get(label)
    ]
    target = c["target_ms"]
    rows: list[Target] = []
    for page in c[dbs[0][0]]["pages"]:
        p95 = {name: c[label]["pages"][page]["p95_ms"] for label, name in dbs if page in c[label]["pages"]}
        rows.append(
            (
                f"console `{page}` p95 ≤ {target:g} ms",
                ", ".join(f"{name} {v:.1f} ms" for name, v in p95.items()),
                all(v <= target for v in p95.values()),
            )
        )
    return rows


def oauth2_targets(o: dict[str, Any]) -> list[Target]:
    delivered = o["key_only"]["all_delivered_once"] and o["oauth2"]["all_delivered_once"]
    return [
        (
            "oauth2: token requests per minute ≤ 1",
            f"{o['tokens_per_minute']:.2f} (per run: {', '.join(map(str, o['token_requests']))})",
            o["tokens_per_minute"] <= 1 and delivered,
        ),
        ("oauth2 throughput ≥ 0.95× key-only", f"{o['ratio']:.2f}×", o["ratio"] >= 0.95 and delivered),
    ]


def api_targets(a: dict[str, Any]) -> list[Target]:
    t, f = a["throughput"], a["fixed_rate"]
    return [
        (
            f"API `POST /v1/events` ≥ {a['target_rate']:,.0f} events/s, --workers {a['workers']}, "
            f"{a['clients']} clients",
            f"{t['events_per_s']:.0f}/s ({t['errors']} errors)",
            t["events_per_s"] >= a["target_rate"] and t["errors"] == 0,
        ),
        (
            f"API p99 ≤ {a['target_p99_ms']:g} ms at {f['rate']:.0f} events/s",
            f"{f['p99_ms']:.1f} ms (p50 {f['p50_ms']:.1f}, p95 {f['p95_ms']:.1f})",
            f["p99_ms"] <= a["target_p99_ms"] and f["errors"] == 0,
        ),
    ]


def telemetry_targets(t: dict[str, Any]) -> list[Target]:
    w, d = t["workers"], t["dispatch"]
    delivered = all(w[m]["all_delivered_once"] for m in ("before", "off", "on"))
    exported = w["on"]["exported"]["trace_bytes"] > 0
    return [
        (
            "traces on (sample_ratio 1.0) ≥ 0.90× off, 4 workers",
            f"{w['on_off']:.2f}× ({w['on']['exported']['trace_bytes']:,} span bytes exported)",
            w["on_off"] >= 0.90 and delivered and exported,
        ),
        (
            "traces on ≥ 0.90× off, `dispatch()` and `dispatch_many`",
            f"`dispatch()` {d['single']['on_off']:.2f}×, `dispatch_many` {d['bulk']['on_off']:.2f}×",
            d["single"]["on_off"] >= 0.90 and d["bulk"]["on_off"] >= 0.90,
        ),
        (
            "traces off within noise of the code before issue 27 (≥ 0.95×), 4 workers",
            f"{w['off_before']:.2f}×",
            w["off_before"] >= 0.95 and delivered,
        ),
        (
            "traces off within noise of before (≥ 0.95×), `dispatch()` and `dispatch_many`",
            f"`dispatch()` {d['single']['off_before']:.2f}×, `dispatch_many` {d['bulk']['off_before']:.2f}×",
            d["single"]["off_before"] >= 0.95 and d["bulk"]["off_before"] >= 0.95,
        ),
    ]


TARGETS: list[tuple[str, Callable[[dict[str, Any]], list[Target]]]] = [
    ("worker", worker_targets),
    ("slow", slow_targets),
    ("dispatch", dispatch_targets),
    ("drain", drain_targets),
    ("cli_startup", cli_targets),
    ("console", console_targets),
    ("oauth2", oauth2_targets),
    ("api", api_targets),
    ("telemetry", telemetry_targets),
]


def targets(results: dict[str, Any]) -> list[Target]:
    rows: list[Target] = []
    for key, scenario_targets in TARGETS:
        if results.get(key):
            rows += scenario_targets(results[key])
    return rows


# --- the chart and the README -----------------------------------------------------------------


def chart(slow: dict[str, Any], path: Path, nproc: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("matplotlib is not installed: no chart (.venv/bin/pip install matplotlib)")
        return False
    threaded = [r for r in slow["rounds"] if not r.get("processes_only")]
    alone = [r for r in slow["rounds"] if r.get("processes_only")]
    xs = [r.get("concurrency", r["workers"]) for r in threaded]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.plot(xs, [r["ideal"] for r in threaded], "--", color="grey", marker="o", label="ideal N × 10/s")
    ax.plot(xs, [r["ideal"] * 0.85 for r in threaded], ":", color="orange", label="target 0.85 × ideal")
    ax.plot(
        xs,
        [r["rate"] for r in threaded],
        "-",
        color="tab:blue",
        marker="s",
        label=f"ours: ceil(N/{THREADS_PER_PROCESS}) processes, N threads",
    )
    if alone:
        ax.plot(
            [r["concurrency"] for r in alone],
            [r["rate"] for r in alone],
            "",
            linestyle="none",
            color="tab:red",
            marker="x",
            label="for comparison: N processes × 1 thread",
        )
    for r in slow["rounds"]:
        ax.annotate(
            f"{r['ratio']:.2f}",
            (r.get("concurrency", r["workers"]), r["rate"]),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize=8,
        )
    ax.set_xlabel("concurrent deliveries (worker processes × worker.threads)")
    ax.set_ylabel("deliveries per second")
    ax.set_title(f"Receiver answering after {slow['delay_ms']:.0f} ms ({nproc} cores, PostgreSQL)")
    ax.set_xticks(xs)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def update_readme(markdown: str) -> None:
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if not README.exists():
        return
    text = README.read_text()
    if start not in text or end not in text:
        return
    body = markdown.split("\n", 1)[1].lstrip("\n")  # drop the H1
    body = re.sub(r"^## ", "### ", body, flags=re.M)
    before, rest = text.split(start, 1)
    _old, after = rest.split(end, 1)
    README.write_text(f"{before}{start}\n{body}\n{end}{after}")
