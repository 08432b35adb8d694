"""A pure, seeded generator of realistic, internally consistent ``(event, data)`` pairs.

It keeps a pool of open encounters and advances one at a time. Each encounter lives a
plausible life: the case is assigned to a clinician, there may be intake messages, then either
the encounter is cancelled (nothing follows a cancellation) or a prescription is submitted and
its order is created, maybe the dosage changes, the patient and the doctor exchange messages
(each reply's ``reply_message_id`` names an earlier message of the same encounter, see
:func:`message_id`), and the order is shipped, delivered, sometimes reshipped. Patient,
encounter, clinician, order and prescribed item ids stay the same across an encounter's events,
and some patients come back for a second encounter. Timestamps come from a simulated clock
(never the wall clock) and strictly increase within an encounter, so one seed always gives the
same sequence.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ...times import format_utc
from . import world as w

SIM_EPOCH = datetime(2026, 1, 30, 8, 0, 0, tzinfo=UTC)
"""Where the simulated clock starts unless told otherwise (``--seed`` runs use it)."""
DEFAULT_CONCURRENCY = 12
"""Encounters open at once; the generator advances one of them per event."""
DISPATCHED_BY = "SIMULATOR"


def message_id(encounter_id: str, index: int) -> str:
    """The id of an encounter's ``index``-th message (0-based), the form ``reply_message_id`` uses.

    ``message_created`` carries no id of its own, so ids follow this scheme: a receiver (or a
    test) can tell which earlier message a reply answers.
    """
    return f"msg_{encounter_id.removeprefix('enc_')}_{index + 1}"


# --- one encounter ---------------------------------------------------------------------------


@dataclass
class _Encounter:
    encounter_id: str
    patient_id: str
    clinician_id: str
    clinician_name: str
    steps: deque[tuple[str, str, dict[str, Any]]] = field(default_factory=deque)
    """(event, time field, data without its time)"""
    messages: int = 0
    last_second: int | None = None


class _World:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.clinicians = [
            (self.new_id("prov"), f"Dr. {rng.choice(w.FIRST_NAMES)} {rng.choice(w.LAST_NAMES)}")
            for _ in range(6)
        ]
        self.recent_patients: deque[str] = deque(maxlen=40)

    def new_id(self, prefix: str, bits: int = 48) -> str:
        while True:
            candidate = f"{prefix}_{self.rng.getrandbits(bits):0{bits // 4}x}"
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate

    def order_number(self) -> str:
        while True:
            candidate = f"BM{self.rng.randrange(10**7, 10**8)}"
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate

    def patient(self) -> str:
        if self.recent_patients and self.rng.random() < 0.2:
            return self.rng.choice(list(self.recent_patients))  # a returning patient
        patient = self.new_id("pat", 40)
        self.recent_patients.append(patient)
        return patient


def _messages(
    enc: _Encounter, world: _World, lines: Iterable[str], doctor_first: bool = True, channel: str = "patient"
) -> None:
    """A back-and-forth thread: each message replies to the one before it."""
    previous: str | None = None
    for turn, text in enumerate(lines):
        is_doctor = (turn % 2 == 0) == doctor_first
        attachment: list[dict[str, Any]] = []
        if not is_doctor and world.rng.random() < 0.1:
            attachment = [
                {
                    "file_name": f"photo_{world.rng.randrange(1000, 9999)}.jpg",
                    "content_type": "image/jpeg",
                    "size": world.rng.randrange(40_000, 2_000_000),
                    "url": f"https://files.baremeds.example/attachments/{world.new_id('att')}",
                }
            ]
        data = {
            "patient_id": enc.patient_id,
            "encounter_id": enc.encounter_id,
            "author_id": enc.clinician_id if is_doctor else enc.patient_id,
            "is_doctor": is_doctor,
            "reply_message_id": previous,
            "channel": channel,
            "message": text,
            "attachment": attachment,
        }
        enc.steps.append(("message_created", "created_at", data))
        previous = message_id(enc.encounter_id, enc.messages)
        enc.messages += 1


def _order(enc: _Encounter, order_number: str, status: str) -> None:
    enc.steps.append(("order_changed", "created_at", {"order_number": order_number, "status": status}))


def _new_encounter(world: _World) -> _Encounter:
    """An encounter's whole life, planned at once: assigned, maybe intake messages, then
    cancelled, or prescribed and shipped (the random draws in a fixed order, for the seed)."""
    rng = world.rng
    clinician_id, clinician_name = rng.choice(world.clinicians)
    enc = _Encounter(world.new_id("enc"), world.patient(), clinician_id, clinician_name)
    enc.steps.append(
        (
            "case_assigned_to_clinician",
            "assigned_at",
            {"encounter_id": enc.encounter_id, "patient_id": enc.patient_id, "clinician_id": clinician_id},
        )
    )
    for question, answer in rng.sample(w.INTAKE, rng.choice((0, 0, 1, 1, 2))):
        _messages(enc, world, (question, answer))
    if rng.random() < 0.15:  # cancelled before any prescription; nothing follows
        _cancel(enc, world)
    else:
        _prescribe_and_ship(enc, world)
    return enc


def _ids(enc: _Encounter) -> dict[str, str]:
    return {"patient_id": enc.patient_id, "encounter_id": enc.encounter_id}


def _cancel(enc: _Encounter, world: _World) -> None:
    rng = world.rng
    by_id, by_name = (enc.clinician_id, enc.clinician_name) if rng.random() < 0.6 else rng.choice(w.SUPPORT)
    data = {
        **_ids(enc),
        "reason": rng.choice(w.CANCEL_REASONS),
        "cancel_by_name": by_name,
        "cancel_by_id": by_id,
    }
    enc.steps.append(("encounter_cancelled", "created_at", data))


def _medication(items: list[dict[str, Any]], adjusted: bool = False) -> list[dict[str, Any]]:
    """The ``medication`` array of a prescription event (``adjusted``: the changed dosage)."""
    return [
        {
            "quantity": item["drug"].adjusted_quantity if adjusted else item["drug"].quantity,
            "directions": item["drug"].adjusted if adjusted else item["drug"].directions,
            "prescribed_item_id": item["prescribed_item_id"],
            "rx_order_id": item["rx_order_id"],
            "medication": item["drug"].name,
        }
        for item in items
    ]


def _prescribe_and_ship(enc: _Encounter, world: _World) -> None:
    rng = world.rng
    order_number = world.order_number()
    drugs = rng.sample(w.FORMULARY, rng.choice((1, 1, 1, 2, 2, 3)))
    items = [
        {
            "drug": drug,
            "prescribed_item_id": world.new_id("prx"),
            "rx_order_id": world.new_id("rxo") if rng.random() < 0.8 else None,
        }
        for drug in drugs
    ]
    submitted = {
        **_ids(enc),
        "order_number": order_number,
        "medication": _medication(items),
        "special_necessities": rng.choice(w.SPECIAL) if rng.random() < 0.3 else None,
    }
    enc.steps.append(("prescription_submitted", "created_at", submitted))
    _order(enc, order_number, "created")
    if rng.random() < 0.4:
        _messages(enc, world, rng.choice(w.AFTER_RX))
    elif rng.random() < 0.3:
        _messages(enc, world, (w.NOTE,), channel="internal")
    if rng.random() < 0.25:
        _messages(enc, world, rng.choice(w.SIDE_EFFECT), doctor_first=False)
        changed = rng.sample(items, rng.randint(1, len(items)))
        data = {**_ids(enc), "order_number": order_number, "medication": _medication(changed, adjusted=True)}
        enc.steps.append(("prescription_dosage_changed", "created_at", {**data, "dosage_change": True}))
        _order(enc, order_number, "updated")
    _order(enc, order_number, "shipped")
    _order(enc, order_number, "delivered")
    if rng.random() < 0.1:
        _messages(enc, world, w.DAMAGED, doctor_first=False)
        _order(enc, order_number, "reshipped")
        _order(enc, order_number, "delivered")
    if rng.random() < 0.3:
        _messages(enc, world, w.THANKS, doctor_first=False)


def generate(
    seed: int | None = None,
    *,
    start: datetime | None = None,
    mean_gap_seconds: float = 1.0,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """An endless, seeded stream of valid ``(event, data)`` pairs; see the module docstring.

    Args:
        seed: the same seed (with the same other arguments) gives the same sequence.
        start: the simulated clock's start (default :data:`SIM_EPOCH`); never read from the wall clock.
        mean_gap_seconds: mean simulated time between two events (exponentially distributed).
        concurrency: encounters open at once.
    """
    rng = random.Random(seed)
    world = _World(rng)
    clock = (start or SIM_EPOCH).timestamp()
    active: list[_Encounter] = []
    while True:
        while len(active) < concurrency:
            active.append(_new_encounter(world))
        index = rng.randrange(len(active))
        enc = active[index]
        clock += rng.expovariate(1.0 / mean_gap_seconds) if mean_gap_seconds > 0 else 0.0
        second = int(clock)
        if enc.last_second is not None and second <= enc.last_second:
            second = enc.last_second + 1  # strictly later than the encounter's previous event
            clock = float(second)
        enc.last_second = second
        event, time_field, data = enc.steps.popleft()
        if not enc.steps:
            active.pop(index)
        yield event, {**data, time_field: format_utc(datetime.fromtimestamp(second, UTC))}
