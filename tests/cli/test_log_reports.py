"""``log stats`` and ``log export`` in-process (click's runner), on SQLite and the real PostgreSQL.

The small tests use a hand-built log whose numbers are worked out below; the slow ones seed
100,000 attempt rows and check that the export's memory stays flat and the stats finish. The
queries behind them are tested in tests/store/test_reports.py, whose row builders these share.
"""

from __future__ import annotations

import csv
import io
import json
import time
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from dispatcher import store
from dispatcher.cli import cli
from dispatcher.store import reports
from dispatcher.times import format_utc
from dispatcher.vocabulary import EVENT_NAMES
from tests.cli.helpers import invoke
from tests.store.test_reports import CA, NOW, OC, attempt, delivery


def seed_small(engine) -> None:
    """The hand-built log. Every delivery was created an hour ago except ``old`` (48 hours ago).

    | id  | event | endpoint  | status    | attempts | attempt rows (outcome duration_ms)              |
    |-----|-------|-----------|-----------|----------|-------------------------------------------------|
    | d1  | OC    | partner-a | delivered | 1        | delivered 100                                   |
    | d2  | OC    | partner-a | delivered | 4        | retry 300, retry 500, retry 600, delivered 200  |
    | d3  | OC    | partner-b | failed    | 2        | retry 1000, failed 50                           |
    | d4  | OC    | partner-b | retrying  | 2        | interrupted 9999 (left out), retry 400          |
    | d5  | CA    | partner-a | queued    | 0        |                                                 |
    | d6  | CA    | partner-a | delivered | 1        | delivered 20                                    |
    | d7  | CA    | partner-a | in_flight | 1        | (attempt under way, no row yet)                 |
    | d8  | CA    | partner-b | failed    | 1        | failed, no duration (left out)                  |
    | old | OC    | partner-a | failed    | 1        | failed 7777                                     |
    """
    hour_ago = NOW - timedelta(hours=1)
    d = {
        "d1": delivery("d1", OC, "partner-a", "delivered", 1, hour_ago),
        "d2": delivery("d2", OC, "partner-a", "delivered", 4, hour_ago + timedelta(seconds=1)),
        "d3": delivery("d3", OC, "partner-b", "failed", 2, hour_ago + timedelta(seconds=2)),
        "d4": delivery("d4", OC, "partner-b", "retrying", 2, hour_ago + timedelta(seconds=3)),
        "d5": delivery("d5", CA, "partner-a", "queued", 0, hour_ago + timedelta(seconds=4)),
        "d6": delivery("d6", CA, "partner-a", "delivered", 1, hour_ago + timedelta(seconds=5)),
        "d7": delivery("d7", CA, "partner-a", "in_flight", 1, hour_ago + timedelta(seconds=6)),
        "d8": delivery("d8", CA, "partner-b", "failed", 1, hour_ago + timedelta(seconds=7)),
        "old": delivery("old", OC, "partner-a", "failed", 1, NOW - timedelta(hours=48)),
    }
    attempts = [
        attempt(d["d1"], 1, "delivered", 100, 200),
        attempt(d["d2"], 1, "retry_scheduled", 300, 503),
        attempt(d["d2"], 2, "retry_scheduled", 500, 503),
        attempt(d["d2"], 3, "retry_scheduled", 600, 503),
        attempt(d["d2"], 4, "delivered", 200, 200),
        attempt(d["d3"], 1, "retry_scheduled", 1000, 500),
        attempt(d["d3"], 2, "failed", 50, 400),
        attempt(d["d4"], 1, "interrupted", 9999),
        attempt(d["d4"], 2, "retry_scheduled", 400, 502),
        attempt(d["d6"], 1, "delivered", 20, 200),
        attempt(d["d8"], 1, "failed", None),
        attempt(d["old"], 1, "failed", 7777, 410),
    ]
    with engine.begin() as conn:
        conn.execute(store.DELIVERIES.insert(), list(d.values()))
        conn.execute(store.ATTEMPTS.insert(), attempts)


def group(deliveries, delivered, failed, pending, retrying, success_rate, attempts_per_delivery, p50, p95):
    return {
        "deliveries": deliveries,
        "delivered": delivered,
        "failed": failed,
        "pending": pending,
        "retrying": retrying,
        "success_rate": success_rate,
        "attempts_per_delivery": attempts_per_delivery,
        "p50_ms": p50,
        "p95_ms": p95,
    }


def stats_json(*args: str) -> dict:
    result = invoke("log", "stats", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# Nearest rank: the p-th percentile of n sorted values is the one at 1-based position ceil(p*n/100).
#
# order_changed (d1-d4): timed durations 50 100 200 300 400 500 600 1000 (n=8)
#   p50 -> rank 4 -> 300; p95 -> rank ceil(7.6)=8 -> 1000; attempts (1+4+2+2)/4 = 2.25
# case_assigned (d5-d8): timed durations 20 (n=1) -> 20, 20; attempts (0+1+1+1)/4 = 0.75
# partner-a (d1 d2 d5 d6 d7): 20 100 200 300 500 600 (n=6): rank 3 -> 200; rank ceil(5.7)=6 -> 600;
#   attempts (1+4+0+1+1)/5 = 1.4
# partner-b (d3 d4 d8): 50 400 1000 (n=3): rank 2 -> 400; rank ceil(2.85)=3 -> 1000; attempts 5/3
# total: 20 50 100 200 300 400 500 600 1000 (n=9): rank 5 -> 300; rank ceil(8.55)=9 -> 1000;
#   attempts 12/8 = 1.5; success 3/(3+2) = 0.6
EXPECTED_24H = {
    "by_event": [
        {"event": CA, **group(4, 1, 1, 2, 0, 0.5, 0.75, 20, 20)},
        {"event": OC, **group(4, 2, 1, 1, 1, 0.6667, 2.25, 300, 1000)},
    ],
    "by_endpoint": [
        {"endpoint": "partner-a", **group(5, 3, 0, 2, 0, 1.0, 1.4, 200, 600)},
        {"endpoint": "partner-b", **group(3, 0, 2, 1, 1, 0.0, 1.67, 400, 1000)},
    ],
    "total": group(8, 3, 2, 3, 1, 0.6, 1.5, 300, 1000),
}


def test_stats_numbers_are_exact(make_runtime, database_url):
    runtime = make_runtime(database_url=database_url)
    seed_small(runtime.engine)
    document = stats_json()
    assert set(document) == {"since", "until", "by_event", "by_endpoint", "total"}
    assert {k: document[k] for k in EXPECTED_24H} == EXPECTED_24H
    since = datetime.fromisoformat(document["since"].replace("Z", "+00:00"))
    until = datetime.fromisoformat(document["until"].replace("Z", "+00:00"))
    assert timedelta(hours=23, minutes=59) < until - since <= timedelta(hours=24, seconds=1)


def test_stats_since_and_until_filter(make_runtime, database_url):
    runtime = make_runtime(database_url=database_url)
    seed_small(runtime.engine)

    # With `old` (failed, 1 attempt of 7777 ms): order_changed durations
    # 50 100 200 300 400 500 600 1000 7777 (n=9) -> p50 rank 5 = 400, p95 rank 9 = 7777.
    document = stats_json("--since", "72h")
    by_event = {row["event"]: row for row in document["by_event"]}
    assert by_event[OC] == {"event": OC, **group(5, 2, 2, 1, 1, 0.5, 2.0, 400, 7777)}
    assert by_event[CA] == EXPECTED_24H["by_event"][0]
    assert document["total"]["deliveries"] == 9

    only_old = stats_json("--since", "72h", "--until", "24h")
    assert only_old["by_event"] == [{"event": OC, **group(1, 0, 1, 0, 0, 0.0, 1.0, 7777, 7777)}]
    assert only_old["by_endpoint"] == [
        {"endpoint": "partner-a", **group(1, 0, 1, 0, 0, 0.0, 1.0, 7777, 7777)}
    ]

    iso = (NOW - timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    empty = stats_json("--since", iso)
    assert empty["by_event"] == [] and empty["by_endpoint"] == []
    assert empty["total"] == group(0, 0, 0, 0, 0, None, None, None, None)


def test_stats_table_is_whole_with_a_total_row(make_runtime):
    runtime = make_runtime()
    seed_small(runtime.engine)
    result = invoke("log", "stats")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("by event: deliveries created ")
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in lines
        if "│" in line
    }
    assert rows[OC] == ["4", "2", "1", "1", "1", "66.7%", "2.25", "300", "1000"]
    assert rows["partner-b"] == ["3", "0", "2", "1", "1", "0.0%", "1.67", "400", "1000"]
    assert rows["(total)"] == ["8", "3", "2", "3", "1", "60.0%", "1.50", "300", "1000"]
    assert sum(1 for line in lines if "(total)" in line) == 2


def test_stats_rejects_an_empty_window(make_runtime):
    make_runtime()
    result = CliRunner().invoke(cli, ["log", "stats", "--since", "1h", "--until", "2h"])
    assert result.exit_code == 2
    assert "--since must be before --until" in result.output


# --- export ----------------------------------------------------------------------------------


def db_rows(engine, kind: str) -> list[dict]:
    table = store.ATTEMPTS if kind == "attempts" else store.DELIVERIES
    order = (table.c.id,) if kind == "attempts" else (table.c.created_at, table.c.request_id)
    with engine.connect() as conn:
        rows = conn.execute(table.select().order_by(*order)).mappings().all()
    return [
        {
            name: format_utc(row[name]) if isinstance(row[name], datetime) else row[name]
            for name in reports.ROW_KINDS[kind]
        }
        for row in rows
    ]


def as_csv_text(row: dict) -> dict:
    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return {k: text(v) for k, v in row.items()}


def export(*args: str) -> str:
    result = invoke("log", "export", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def parse_jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def parse_csv(text: str) -> tuple[list[str], list[dict]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def test_export_jsonl_and_csv_parse_back_to_the_rows(make_runtime, database_url):
    runtime = make_runtime(database_url=database_url)
    seed_small(runtime.engine)
    expected = db_rows(runtime.engine, "attempts")
    assert len(expected) == 12

    jsonl = parse_jsonl(export())
    assert jsonl == expected
    assert list(jsonl[0]) == list(reports.ATTEMPT_COLUMNS)
    assert jsonl[0]["created_at"].endswith("Z") and json.loads(jsonl[0]["request_headers"])["X-Webhook-Key"]
    assert json.loads(jsonl[2]["request_payload"]) == {"event": OC, "metadata": {"retry": True}}

    header, rows = parse_csv(export("--format", "csv"))
    assert header == list(reports.ATTEMPT_COLUMNS)
    assert rows == [as_csv_text(row) for row in expected]


def test_export_filters(make_runtime, database_url):
    runtime = make_runtime(database_url=database_url)
    seed_small(runtime.engine)

    def ids(*args: str) -> list[tuple[str, int]]:
        return [(row["request_id"], row["attempt"]) for row in parse_jsonl(export(*args))]

    assert ids("--event", CA) == [("d6", 1), ("d8", 1)]
    assert ids("--endpoint", "partner-b") == [("d3", 1), ("d3", 2), ("d4", 1), ("d4", 2), ("d8", 1)]
    assert ids("--event", OC, "--endpoint", "partner-b", "--since", "24h") == [
        ("d3", 1),
        ("d3", 2),
        ("d4", 1),
        ("d4", 2),
    ]
    assert ids("--until", "24h") == [("old", 1)]
    assert ids("--endpoint", "nobody") == []
    _, rows = parse_csv(export("--format", "csv", "--endpoint", "nobody"))
    assert rows == []


def test_export_deliveries(make_runtime, database_url):
    runtime = make_runtime(database_url=database_url)
    seed_small(runtime.engine)
    expected = db_rows(runtime.engine, "deliveries")
    assert [row["request_id"] for row in expected] == ["old", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"]

    jsonl = parse_jsonl(export("--rows", "deliveries"))
    assert jsonl == expected
    assert "request_payload" not in jsonl[0] and json.loads(jsonl[0]["payload"])["event"] == OC

    header, rows = parse_csv(export("--rows", "deliveries", "--format", "csv", "--since", "24h"))
    assert header == list(reports.DELIVERY_COLUMNS)
    assert rows == [as_csv_text(row) for row in expected[1:]]


def test_export_to_a_file(make_runtime, database_url, tmp_path):
    runtime = make_runtime(database_url=database_url)
    seed_small(runtime.engine)
    target = tmp_path / "out" / "attempts.csv"
    target.parent.mkdir()
    result = invoke("log", "export", "--format", "csv", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"exported 12 attempts rows to {target}" in result.stderr
    header, rows = parse_csv(target.read_text(encoding="utf-8"))
    assert rows == [as_csv_text(row) for row in db_rows(runtime.engine, "attempts")]
    assert sorted(p.name for p in target.parent.iterdir()) == ["attempts.csv"]  # no .part left

    jsonl_target = tmp_path / "deliveries.jsonl"
    result = invoke("log", "export", "--rows", "deliveries", "--output", str(jsonl_target))
    assert result.exit_code == 0, result.output
    assert parse_jsonl(jsonl_target.read_text(encoding="utf-8")) == db_rows(runtime.engine, "deliveries")


def test_export_to_an_unwritable_place_is_one_clear_error(make_runtime, tmp_path):
    make_runtime()
    result = CliRunner().invoke(cli, ["log", "export", "-o", str(tmp_path / "missing" / "x.jsonl")])
    assert result.exit_code != 0
    assert "Traceback" not in result.output


# --- 100,000 rows ----------------------------------------------------------------------------

BIG_DELIVERIES = 25_000
ATTEMPTS_EACH = 4
STATUS_CYCLE = ("delivered", "delivered", "delivered", "failed", "retrying", "queued", "in_flight")
ENDPOINTS = ("partner-a", "partner-b", "partner-c")


def big_duration(index: int) -> int:
    return (index * 7919) % 3001  # every value 0..3000 about equally often, in no order


def big_rows(chunk: int = 5_000) -> Iterator[tuple[list[dict], list[dict]]]:
    """25,000 deliveries with 4 attempt rows each (100,000), in chunks, never all in memory."""
    base = NOW - timedelta(hours=2)
    headers = json.dumps({"Content-Type": "application/json", "X-Webhook-Key": "[redacted]"})
    body = "x" * 400
    for start in range(0, BIG_DELIVERIES, chunk):
        deliveries, attempts = [], []
        for i in range(start, min(start + chunk, BIG_DELIVERIES)):
            event = EVENT_NAMES[i % len(EVENT_NAMES)]
            d = delivery(
                f"big-{i:07d}",
                event,
                ENDPOINTS[i % len(ENDPOINTS)],
                STATUS_CYCLE[i % len(STATUS_CYCLE)],
                ATTEMPTS_EACH,
                base + timedelta(milliseconds=i),
            )
            deliveries.append(d)
            for n in range(1, ATTEMPTS_EACH + 1):
                row = attempt(d, n, "retry_scheduled", big_duration(i * ATTEMPTS_EACH + n), 503)
                row["request_headers"] = headers
                row["request_payload"] = json.dumps({"event": event, "data": {"note": body}})
                attempts.append(row)
        yield deliveries, attempts


def seed_big(engine) -> float:
    started = time.perf_counter()
    for deliveries, attempts in big_rows():
        with engine.begin() as conn:
            conn.execute(store.DELIVERIES.insert(), deliveries)
            conn.execute(store.ATTEMPTS.insert(), attempts)
    return time.perf_counter() - started


def measured(fn) -> tuple[Any, float, float]:
    """(result, seconds, peak traced memory growth in MB) of ``fn()``."""
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return value, seconds, (peak - baseline) / 1e6


@pytest.mark.slow
def test_100k_attempt_rows_export_flat_and_stats(make_runtime, sqlite_url, tmp_path):
    # Once, on SQLite: the queries are the same on PostgreSQL, whose results the small tests check.
    runtime = make_runtime(database_url=sqlite_url)
    backend = runtime.engine.dialect.name
    seeded = seed_big(runtime.engine)
    total_attempts = BIG_DELIVERIES * ATTEMPTS_EACH
    assert reports.count_rows(runtime.engine, "attempts", store.Selection()) == total_attempts

    target = tmp_path / "attempts.jsonl"
    result, seconds, peak_mb = measured(lambda: invoke("log", "export", "-o", str(target)))
    assert result.exit_code == 0, result.output
    size_mb = target.stat().st_size / 1e6
    print(f"\n[{backend}] seeded {total_attempts} attempt rows in {seeded:.1f}s")
    print(
        f"[{backend}] export jsonl -o (tracemalloc on): {seconds:.1f}s, file {size_mb:.1f} MB, peak memory growth {peak_mb:.1f} MB"
    )
    assert peak_mb < 50
    count, last_id = 0, 0
    with target.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            assert row["id"] > last_id
            last_id = row["id"]
            count += 1
    assert count == total_attempts

    # The same export as CSV, timed without tracemalloc (which slows Python's allocations down).
    csv_target = tmp_path / "attempts.csv"
    started = time.perf_counter()
    result = invoke("log", "export", "--format", "csv", "-o", str(csv_target))
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    print(f"[{backend}] export csv -o (untraced): {seconds:.1f}s")
    with csv_target.open(encoding="utf-8", newline="") as handle:
        assert sum(1 for _ in csv.reader(handle)) == total_attempts + 1

    result, seconds, peak_mb = measured(lambda: invoke("log", "stats", "--json"))
    assert result.exit_code == 0, result.output
    print(f"[{backend}] stats --json (tracemalloc on): {seconds:.2f}s, peak memory growth {peak_mb:.1f} MB")
    assert peak_mb < 50
    document = json.loads(result.stdout)
    total = document["total"]
    assert total["deliveries"] == BIG_DELIVERIES
    assert total["attempts_per_delivery"] == ATTEMPTS_EACH
    durations = sorted(big_duration(k) for k in range(1, total_attempts + 1))
    assert total["p50_ms"] == durations[reports.nearest_rank(50, total_attempts) - 1]
    assert total["p95_ms"] == durations[reports.nearest_rank(95, total_attempts) - 1]
    assert sum(row["deliveries"] for row in document["by_event"]) == BIG_DELIVERIES
    assert {row["endpoint"] for row in document["by_endpoint"]} == set(ENDPOINTS)
