"""Scenario 6, the cost of encryption at rest: ``dispatch()`` p50 and ``dispatch_many`` (SQLite
and PostgreSQL, in the benchmark process) and one burst worker's deliveries/s (PostgreSQL,
instant receiver), each without storage keys and with one, in the same run."""

from __future__ import annotations

from pathlib import Path

from bench.harness import PG_URL, Sizes, say
from bench.harness.processes import Processes
from bench.scenarios.dispatch import dispatch_round
from bench.scenarios.worker import bench_ours_burst
from dispatcher.store.sealing import new_key


def run(procs: Processes, tmp: Path, url: str | None, sizes: Sizes) -> dict:
    assert url is not None, "the encryption scenario needs the instant receiver"
    say("6. encryption at rest")
    keys = {"storage_keys": [new_key()]}
    out: dict[str, dict] = {"dispatch": {}, "worker": {}}
    for label, database_url in (("sqlite", f"sqlite:///{tmp}/encryption.db"), ("postgresql", PG_URL)):
        for mode, extra in (("plain", None), ("sealed", keys)):
            r = dispatch_round(tmp, f"{label}-{mode}", database_url, url, sizes, extra)
            out["dispatch"][f"{label}-{mode}"] = r
            say(
                f"   {label} {mode}: dispatch() p50 {r['p50_ms']:.2f} ms, "
                f"dispatch_many {r['bulk_events_per_s']:.0f}/s"
            )
    for mode, extra in (("plain", None), ("sealed", keys)):
        runs = [
            bench_ours_burst(procs, tmp, url, PG_URL, f"enc-{mode}-{i}", sizes.ours, extra)
            for i in range(sizes.repeats)
        ]
        best = max(runs, key=lambda r: r["rate"])
        out["worker"][mode] = best
        say(f"   worker {mode}: {best['rate']:.0f} deliveries/s (best of {len(runs)})")
    return out
