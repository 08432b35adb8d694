"""The seeded generator (dispatcher.ops.simulate.encounters): the same seed gives the same
sequence, every event is valid, and each encounter lives a consistent life."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from itertools import islice

import pytest

from dispatcher.contract.validation import validate
from dispatcher.ops import simulate
from dispatcher.vocabulary import EVENT_NAMES

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


def test_a_message_id_names_its_encounter_and_its_place_from_one() -> None:
    assert simulate.message_id("enc_7f3a", 0) == "msg_7f3a_1"
    assert simulate.message_id("enc_7f3a", 4) == "msg_7f3a_5"
