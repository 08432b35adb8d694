"""``dispatcher simulate``: the generator (determinism, validity, a consistent world) and a real run."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from itertools import islice

import pytest
from click.testing import CliRunner

from dispatcher import store
from dispatcher.cli import cli
from dispatcher.contract.validation import validate
from dispatcher.ops import simulate
from dispatcher.vocabulary import EVENT_NAMES
from tests.conftest import wait_for

SEEDS = (1, 42, 2026)


def take(seed: int | None, n: int, **kwargs) -> list[tuple[str, dict]]:
    return list(islice(simulate.generate(seed, **kwargs), n))


def moment(data: dict) -> datetime:
    text = data.get("created_at") or data["assigned_at"]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_same_seed_same_sequence_different_seed_different():
    first = take(42, 1500)
    assert first == take(42, 1500)
    assert take(42, 100) == first[:100]  # a shorter run is a prefix
    assert take(43, 200) != first[:200]
    # The simulated clock, never the wall clock: it starts at SIM_EPOCH by default.
    assert moment(first[0][1]) >= simulate.SIM_EPOCH
    assert moment(first[0][1]).year == 2026
    start = datetime(2030, 5, 1, tzinfo=UTC)
    shifted = take(42, 50, start=start)
    assert [e for e, _ in shifted] == [e for e, _ in first[:50]]
    assert moment(shifted[0][1]) >= start


@pytest.mark.parametrize("seed", SEEDS)
def test_every_generated_event_is_valid(seed):
    seen = Counter()
    for event, data in take(seed, 3000):
        validate(event, data)  # raises InvalidEventData naming the field
        seen[event] += 1
    assert set(seen) == set(EVENT_NAMES), seen


def test_a_short_run_already_has_every_kind_of_event():
    assert {e for e, _ in take(5, 300)} == set(EVENT_NAMES)


@pytest.mark.parametrize("seed", SEEDS)
def test_encounters_live_a_consistent_life(seed):
    assigned: dict[str, dict] = {}
    cancelled: set[str] = set()
    prescribed: dict[str, dict] = {}  # encounter -> its prescription
    order_owner: dict[str, str] = {}  # order_number -> encounter
    order_statuses: dict[str, list[str]] = defaultdict(list)
    messages: dict[str, int] = defaultdict(int)
    last_time: dict[str, datetime] = {}
    previous_global = None

    for event, data in take(seed, 4000):
        when = moment(data)
        if previous_global is not None:
            assert when >= previous_global
        previous_global = when
        if event == "order_changed":
            encounter = order_owner.get(data["order_number"])
            assert encounter is not None, "an order change for an order no prescription created"
            order_statuses[data["order_number"]].append(data["status"])
        else:
            encounter = data["encounter_id"]
            if event == "case_assigned_to_clinician":
                assert encounter not in assigned, "an encounter assigned twice"
                assigned[encounter] = data
            else:
                assert encounter in assigned, f"{event} before the case was assigned"
                assert data["patient_id"] == assigned[encounter]["patient_id"], "the patient changed"
        assert encounter not in cancelled, f"{event} after the encounter was cancelled"
        if encounter in last_time:
            assert when > last_time[encounter], "timestamps must increase within an encounter"
        last_time[encounter] = when

        if event == "encounter_cancelled":
            assert encounter not in prescribed, "cancelled after a prescription"
            cancelled.add(encounter)
        elif event == "prescription_submitted":
            assert encounter not in prescribed
            prescribed[encounter] = data
            assert data["order_number"] not in order_owner
            order_owner[data["order_number"]] = encounter
        elif event == "prescription_dosage_changed":
            original = prescribed[encounter]
            assert data["order_number"] == original["order_number"]
            items = {m["prescribed_item_id"]: m for m in original["medication"]}
            for item in data["medication"]:
                assert item["prescribed_item_id"] in items
                assert item["medication"] == items[item["prescribed_item_id"]]["medication"]
                assert item["rx_order_id"] == items[item["prescribed_item_id"]]["rx_order_id"]
            assert data["dosage_change"] is True
        elif event == "message_created":
            clinician = assigned[encounter]["clinician_id"]
            assert data["author_id"] == (clinician if data["is_doctor"] else data["patient_id"])
            reply = data["reply_message_id"]
            if reply is not None:
                earlier = {simulate.message_id(encounter, i) for i in range(messages[encounter])}
                assert reply in earlier, "a reply to a message that was not sent before"
            messages[encounter] += 1

    assert cancelled and prescribed and any(messages.values())
    assert any(s.count("delivered") == 2 and "reshipped" in s for s in order_statuses.values())
    for statuses in order_statuses.values():
        assert statuses[0] == "created"
        if "delivered" in statuses:
            assert statuses.index("shipped") < statuses.index("delivered")
    replies = sum(1 for e, d in take(seed, 4000) if e == "message_created" and d["reply_message_id"])
    assert replies > 50
    patients = Counter(a["patient_id"] for a in assigned.values())
    assert any(count > 1 for count in patients.values()), "no returning patient"


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("5/s", 5), ("5", 5), ("300/m", 5), ("0.5/s", 0.5), ("7200/h", 2), ("20 / s", 20)],
)
def test_parse_rate(text, per_second):
    assert simulate.parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("bad", ["", "fast", "0", "-1/s", "5/d", "5/s/s"])
def test_bad_rate_is_refused(bad):
    with pytest.raises(ValueError):
        simulate.parse_rate(bad)


def test_pacing_spreads_events_at_the_rate():
    now = [0.0]
    sent_at: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def send(event: str, data: dict) -> int:
        sent_at.append(now[0])
        return 2

    summary = simulate.run(
        simulate.generate(1), rate=4, count=8, send=send, clock=lambda: now[0], sleep=sleep
    )
    assert sent_at == pytest.approx([i / 4 for i in range(8)])
    assert summary.events == 8 and summary.deliveries == 16
    assert summary.elapsed_seconds == pytest.approx(2.0)  # the run lasts rate x duration
    assert summary.achieved_rate == pytest.approx(4.0)
    assert sum(summary.by_event.values()) == 8


def test_cli_rejects_a_bad_rate_and_an_unknown_endpoint(make_runtime, receiver):
    make_runtime(endpoints=[{"name": "partner", "url": receiver.url}])
    result = CliRunner().invoke(cli, ["simulate", "--rate", "fast"])
    assert result.exit_code == 2 and "--rate" in result.output
    result = CliRunner().invoke(cli, ["simulate", "--duration", "1s", "--endpoint", "nope"])
    assert result.exit_code == 1 and "error: unknown endpoint 'nope'" in result.output


def test_dry_run_prints_the_seeded_events_and_dispatches_nothing(make_runtime, receiver):
    runtime = make_runtime(endpoints=[{"name": "partner", "url": receiver.url}])
    args = ["simulate", "--dry-run", "--seed", "7", "--rate", "10/s", "--duration", "3s"]
    first = CliRunner().invoke(cli, args, catch_exceptions=False)
    second = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert first.exit_code == 0
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(lines) == 30
    assert first.stdout == second.stdout
    expected = take(7, 30, start=simulate.SIM_EPOCH, mean_gap_seconds=0.1)
    assert [(x["event"], x["data"]) for x in lines] == [(e, validate(e, d)) for e, d in expected]
    assert store.list_deliveries(runtime.engine, limit=10) == []


def test_a_real_run_stores_and_delivers_about_rate_times_duration(
    make_runtime, receiver, write_config, start_worker
):
    endpoints = [{"name": "partner", "url": receiver.url}]
    runtime = make_runtime(endpoints=endpoints)
    result = CliRunner().invoke(
        cli,
        ["simulate", "--rate", "20/s", "--duration", "1s", "--seed", "3", "--endpoint", "partner", "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["events"] == 20 and summary["planned_events"] == 20
    assert summary["deliveries"] == 20
    assert sum(summary["events_by_type"].values()) == 20
    assert 0.9 <= summary["elapsed_seconds"] < 5
    assert summary["achieved_rate"] > 4
    rows = store.list_deliveries(runtime.engine, limit=1000)
    assert len(rows) == 20
    assert {r["endpoint"] for r in rows} == {"partner"}
    assert Counter(r["event"] for r in rows) == Counter(summary["events_by_type"])
    payload = json.loads(store.get_delivery(runtime.engine, rows[0]["request_id"])["payload"])
    assert payload["metadata"]["dispatched_by"] == "SIMULATOR"

    start_worker(write_config(endpoints=endpoints), name="simulate-worker")
    wait_for(lambda: len(receiver.request_ids()) == 20, timeout=60, message="20 simulated deliveries")
    assert {r["request_id"] for r in rows} == receiver.request_ids()

    table = CliRunner().invoke(
        cli, ["simulate", "--rate", "50/s", "--duration", "0.2"], catch_exceptions=False
    )
    assert table.exit_code == 0
    assert "10 of 10 events" in table.stdout and "10 deliveries created" in table.stdout


def test_simulate_refuses_production(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from dispatcher.cli import cli
    from dispatcher.runtime import Runtime, set_runtime
    from tests.conftest import settings_from

    raw = {
        "environment": "production",
        "endpoints": [{"name": "p", "url": "https://p.example.com", "key": "k-prod-1"}],
    }
    previous = set_runtime(Runtime(settings_from(raw)))
    try:
        result = CliRunner().invoke(cli, ["simulate", "--rate", "5/s", "--duration", "1s"])
    finally:
        set_runtime(previous)
    assert result.exit_code != 0
    assert result.exit_code == 1 and "refusing in environment production" in result.output
