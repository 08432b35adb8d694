"""``--profile``: py-spy samples one burst worker draining 1,000 deliveries (PostgreSQL, instant
receiver) and splits its GIL-holding time per delivery into groups (RQ's dequeue and
bookkeeping, our take, claim, POST, record, log line); writes ``bench/results/profile.md`` and
the heaviest stacks, folded, to ``bench/results/profile-folded.txt``."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

from bench.harness import PG_URL, RESULTS, say
from bench.harness.driver import driver_runtime, our_config, queue_backlog, reset_database
from bench.harness.processes import Processes, child_env, tail
from bench.harness.services import flush_redis

Stacks = list[tuple[list[str], int]]

PROFILE_HZ = 250
PROFILE_GROUPS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    # (name, a frame starting with any of these is in the group, ... unless one of these is too)
    (
        "RQ: dequeue the next job (BLPOP/LMOVE + fetch the job hash)",
        ("BaseWorker.dequeue_job_and_maintain_ttl (",),
        (),
    ),
    (
        "RQ: per-job bookkeeping around our function (registries, status, heartbeat, result)",
        ("BaseWorker.execute_job (", "SimpleWorker.execute_job (", "BaseWorker.perform_job ("),
        ("deliver (dispatcher/worker/batch.py",),
    ),
    (
        "ours: take queued jobs into the batch (queue.take, one Lua call)",
        ("take (dispatcher/queue/jobs.py",),
        (),
    ),
    (
        "ours: claim a group (store.claim_many, one UPDATE … RETURNING)",
        ("claim_many (dispatcher/store/deliveries.py",),
        (),
    ),
    ("ours: HTTP POST, sender threads (sending.attempt.post)", ("post (dispatcher/sending/attempt.py",), ()),
    (
        "ours: record a group of attempts (store.record_attempts, one transaction)",
        ("record_attempts (dispatcher/store/records.py",),
        (),
    ),
    ("ours: process log line (logs.log_line)", ("log_line (dispatcher/logs.py",), ()),
    (
        "ours: disabled-endpoint check (store.endpoints)",
        ("get (dispatcher/store/endpoints.py", "DisabledCache.get ("),
        (),
    ),
    ("ours: payload render + headers", ("render (dispatcher/contract/wrapper.py", "build_headers ("), ()),
]


def write_folded(stacks: Stacks, path: Path, keep: int = 150) -> None:
    """The job loop's stacks in folded form (flamegraph.pl / speedscope), line numbers dropped,
    identical stacks merged, the ``keep`` heaviest kept."""
    merged: dict[str, int] = {}
    for frames, count in stacks:
        key = ";".join(re.sub(r":\d+\)$", ")", f) for f in frames)
        merged[key] = merged.get(key, 0) + count
    heaviest = sorted(merged.items(), key=lambda kv: -kv[1])[:keep]
    path.write_text("".join(f"{k} {v}\n" for k, v in heaviest))


def record(procs: Processes, tmp: Path, url: str, n: int, pyspy: str) -> Stacks | None:
    """Queues ``n`` deliveries and runs one burst worker under ``py-spy record``; its raw stacks
    (None when py-spy wrote nothing)."""
    flush_redis()
    reset_database(PG_URL)
    config, raw = our_config(tmp, "profile", url, PG_URL)
    with driver_runtime(raw):
        queue_backlog(n)
    raw_out = tmp / "profile.txt"
    # --gil: only the thread holding the GIL is sampled, so a sample is Python CPU time on any
    # thread (the job's and the sender threads), and waiting on the network is not counted.
    cmd = [pyspy, "record", "--gil", "--rate", str(PROFILE_HZ), "--format", "raw", "-o", str(raw_out), "--"]
    cmd += [sys.executable, "worker.py", "--burst"]
    proc = procs.start("py-spy", cmd, child_env(config))
    try:
        proc.wait(timeout=max(120, n / 5))
    finally:
        procs.stop([proc])
    if not raw_out.exists():
        say(f"py-spy wrote nothing:\n{tail(proc)}")
        return None
    stacks = []
    for line in raw_out.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def summarise(loop: Stacks, n: int) -> dict[str, Any]:
    """The job loop's samples per group and the heaviest leaf frames, per delivery."""
    total = sum(c for _f, c in loop) or 1

    def has(frames: list[str], needles: tuple[str, ...]) -> bool:
        return any(x.startswith(needles) for x in frames)

    groups = []
    for name, needles, unless in PROFILE_GROUPS:
        hits = sum(c for f, c in loop if has(f, needles) and not (unless and has(f, unless)))
        groups.append({"name": name, "share": hits / total, "ms_per_delivery": hits / PROFILE_HZ * 1000 / n})
    grouped = sum(g["share"] for g in groups)
    groups.append(
        {
            "name": "other (RQ loop, maintenance, scheduler checks)",
            "share": max(0.0, 1 - grouped),
            "ms_per_delivery": max(0.0, 1 - grouped) * total / PROFILE_HZ * 1000 / n,
        }
    )
    selfs: dict[str, int] = {}
    for f, c in loop:
        leaf = re.sub(r":\d+\)$", ")", f[-1])
        selfs[leaf] = selfs.get(leaf, 0) + c
    top = sorted(selfs.items(), key=lambda kv: -kv[1])[:15]
    return {
        "deliveries": n,
        "rate_hz": PROFILE_HZ,
        "loop_seconds": total / PROFILE_HZ,
        "ms_per_delivery": total / PROFILE_HZ * 1000 / n,
        "groups": groups,
        "top_self": [{"frame": name, "share": c / total} for name, c in top],
    }


def profile_markdown(out: dict[str, Any]) -> list[str]:
    """The lines of ``bench/results/profile.md``."""
    text = [
        "# py-spy profile of one burst worker (PostgreSQL, instant receiver, GIL-holding samples)",
        "",
        "Samples are taken only from the thread holding the GIL (`py-spy --gil`): Python CPU time on",
        "the job's thread and the sender threads; time spent waiting on the network is not in it.",
        "",
        f"{out['deliveries']} deliveries, {out['loop_seconds']:.1f} s of GIL time = "
        f"{out['ms_per_delivery']:.2f} ms per delivery",
        "",
        "| share | ms/delivery | where |",
        "|---:|---:|---|",
    ]
    text += [
        f"| {g['share'] * 100:.1f}% | {g['ms_per_delivery']:.2f} | {g['name']} |"
        for g in sorted(out["groups"], key=lambda g: -g["share"])
    ]
    text += ["", "Top leaf frames (self time):", "", "| share | frame |", "|---:|---|"]
    text += [f"| {t['share'] * 100:.1f}% | `{t['frame']}` |" for t in out["top_self"]]
    return text


def profile_worker(procs: Processes, tmp: Path, url: str, n: int) -> dict[str, Any] | None:
    """py-spy (wall clock, idle included) on one burst worker draining ``n`` deliveries
    (PostgreSQL, instant receiver): where the job loop's time goes, per delivery."""
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists():
        say("py-spy is not installed: no profile (.venv/bin/pip install py-spy)")
        return None
    say(f"profile: py-spy on one burst worker, {n} deliveries")
    stacks = record(procs, tmp, url, n, pyspy)
    if stacks is None:
        return None
    # the job loop and the sender threads (not start-up, not the housekeeping thread)
    loop = [
        (f, c)
        for f, c in stacks
        if any(x.startswith(("BaseWorker.work (", "send (dispatcher/worker/flight.py")) for x in f)
    ]
    out = summarise(loop, n)
    text = profile_markdown(out)
    (RESULTS / "profile.md").write_text("\n".join(text) + "\n")
    write_folded(loop, RESULTS / "profile-folded.txt")
    say("   " + "\n   ".join(text[2:]))
    return out
