"""Realistic, internally consistent webhook traffic, for partners testing their receiver.

Two separate parts:

* :func:`generate` is a pure, seeded generator of ``(event, data)``. It keeps a pool of open
  encounters and advances one at a time. Each encounter lives a plausible life: the case is
  assigned to a clinician, there may be intake messages, then either the encounter is
  cancelled (nothing follows a cancellation) or a prescription is submitted and its order is
  created, maybe the dosage changes, the patient and the doctor exchange messages (each reply's
  ``reply_message_id`` names an earlier message of the same encounter, see :func:`message_id`),
  and the order is shipped, delivered, sometimes reshipped. Patient, encounter, clinician,
  order and prescribed item ids stay the same across an encounter's events, and some patients
  come back for a second encounter. Timestamps come from a simulated clock (never the wall
  clock inside the generator) and strictly increase within an encounter, so one seed always
  gives the same sequence.
* :func:`run` paces any ``(event, data)`` iterator at a rate and hands each event to a
  ``send`` callable (``dispatch`` in the CLI), reporting progress.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .events import format_utc

SIM_EPOCH = datetime(2026, 1, 30, 8, 0, 0, tzinfo=UTC)
"""Where the simulated clock starts unless told otherwise (``--seed`` runs use it)."""
DEFAULT_CONCURRENCY = 12
"""Encounters open at once; the generator advances one of them per event."""
DISPATCHED_BY = "SIMULATOR"

# --- parsing the CLI's --rate and --duration ------------------------------------------------

_RATE_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(text: str) -> float:
    """Events per second from ``5/s``, ``5`` (per second), ``300/m`` or ``100/h``.

    Raises:
        ValueError: not a positive rate in one of those forms.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|m|min|h))?\s*", str(text))
    if not match:
        raise ValueError(f"{text!r} is not a rate; use events per second or a unit: 5/s, 5, 300/m, 100/h")
    per_second = float(match.group(1)) / _RATE_UNITS[match.group(2) or "s"]
    if not math.isfinite(per_second) or per_second <= 0:
        raise ValueError(f"{text!r}: the rate must be greater than 0")
    return per_second


def parse_duration(text: str) -> float:
    """Seconds from ``60s``, ``2m``, ``1h``, ``1m30s`` or plain seconds (``90``, ``0.5``).

    Raises:
        ValueError: not a positive duration in one of those forms.
    """
    value = str(text).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        seconds = float(value)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smh])", value)
        if not parts or re.sub(r"\s+", "", value) != "".join(n + u for n, u in parts):
            raise ValueError(f"{text!r} is not a duration; use seconds or units: 60s, 2m, 1h, 1m30s, 90")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{text!r}: the duration must be greater than 0")
    return seconds


# --- the world the generator draws from -----------------------------------------------------

_FIRST_NAMES = ("Amara", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonah")
_LAST_NAMES = ("Okafor", "Lindqvist", "Moreau", "Nakamura", "Patel", "Quinn", "Rossi", "Silva", "Tanaka")
_SUPPORT = (("support_agent_01", "Baremeds Support"), ("support_agent_02", "Care Team"))


@dataclass(frozen=True)
class _Drug:
    name: str
    quantity: int
    directions: str
    adjusted: str
    adjusted_quantity: int


_FORMULARY = (
    _Drug(
        "Sertraline 50 mg tablet",
        30,
        "Take 1 tablet by mouth once daily",
        "Take 1 and 1/2 tablets by mouth once daily",
        45,
    ),
    _Drug(
        "Finasteride 1 mg tablet",
        90,
        "Take 1 tablet by mouth once daily",
        "Take 1 tablet every other day",
        45,
    ),
    _Drug(
        "Tretinoin 0.025% cream 20 g",
        1,
        "Apply a pea-sized amount to the face at bedtime",
        "Apply a pea-sized amount every other night",
        1,
    ),
    _Drug(
        "Metformin ER 500 mg tablet",
        30,
        "Take 1 tablet with the evening meal",
        "Take 2 tablets with the evening meal",
        60,
    ),
    _Drug(
        "Semaglutide 0.25 mg/0.5 mL pen",
        1,
        "Inject 0.25 mg under the skin once weekly",
        "Inject 0.5 mg under the skin once weekly",
        1,
    ),
    _Drug(
        "Spironolactone 50 mg tablet",
        30,
        "Take 1 tablet by mouth every morning",
        "Take 2 tablets by mouth every morning",
        60,
    ),
    _Drug(
        "Sildenafil 20 mg tablet",
        30,
        "Take 1 to 3 tablets 1 hour before activity as needed",
        "Take 2 to 5 tablets 1 hour before activity as needed",
        60,
    ),
    _Drug(
        "Ondansetron 4 mg ODT",
        10,
        "Dissolve 1 tablet on the tongue every 8 hours as needed for nausea",
        "Dissolve 1 tablet on the tongue every 12 hours as needed for nausea",
        10,
    ),
)
_SPECIAL = (
    "Ship in discreet packaging",
    "Patient prefers delivery to work address",
    "Keep refrigerated in transit",
    "Signature required on delivery",
)
_CANCEL_REASONS = (
    "Patient request",
    "Duplicate encounter",
    "Not a candidate for telehealth treatment; referred to in-person care",
    "Patient unreachable after 3 attempts",
    "Payment not completed",
)
_INTAKE = (
    (
        "Hi, I'm reviewing your intake. Are you taking any other medications?",
        "Only a daily multivitamin.",
    ),
    ("Do you have any known drug allergies?", "None that I know of."),
    ("How long have you had these symptoms?", "About three months now."),
    ("Any history of liver or kidney problems?", "No, my last blood work was normal."),
)
_AFTER_RX = (
    (
        "I've sent your prescription. Take it with food to avoid an upset stomach.",
        "Thanks! When will it ship?",
        "Usually within 1-2 business days; you'll get a tracking update.",
    ),
    (
        "Your prescription is in. Let me know if anything is unclear.",
        "Can I take it in the evening instead?",
        "Yes, just keep it at the same time each day.",
    ),
)
_SIDE_EFFECT = (
    ("I've had mild headaches since starting.", "Let's adjust the dose; I've updated your prescription."),
    ("It doesn't seem to be working yet.", "We'll increase the dose a little; see the updated directions."),
    ("I feel a bit dizzy in the mornings.", "I've changed the directions; tell me how the next week goes."),
)
_DAMAGED = (
    "The package arrived damaged and the seal was broken.",
    "Sorry about that! We've arranged a replacement shipment.",
)
_THANKS = ("Received my order, thank you!", "Great, reach out any time.")
_NOTE = "Chart reviewed; no interactions found."


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
            (self.new_id("prov"), f"Dr. {rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}")
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
    rng = world.rng
    clinician_id, clinician_name = rng.choice(world.clinicians)
    enc = _Encounter(world.new_id("enc"), world.patient(), clinician_id, clinician_name)
    ids = {"patient_id": enc.patient_id, "encounter_id": enc.encounter_id}
    enc.steps.append(
        (
            "case_assigned_to_clinician",
            "assigned_at",
            {"encounter_id": enc.encounter_id, "patient_id": enc.patient_id, "clinician_id": clinician_id},
        )
    )
    for question, answer in rng.sample(_INTAKE, rng.choice((0, 0, 1, 1, 2))):
        _messages(enc, world, (question, answer))

    if rng.random() < 0.15:  # cancelled before any prescription; nothing follows
        by_id, by_name = (clinician_id, clinician_name) if rng.random() < 0.6 else rng.choice(_SUPPORT)
        enc.steps.append(
            (
                "encounter_cancelled",
                "created_at",
                {
                    **ids,
                    "reason": rng.choice(_CANCEL_REASONS),
                    "cancel_by_name": by_name,
                    "cancel_by_id": by_id,
                },
            )
        )
        return enc

    order_number = world.order_number()
    drugs = rng.sample(_FORMULARY, rng.choice((1, 1, 1, 2, 2, 3)))
    items = [
        {
            "drug": drug,
            "prescribed_item_id": world.new_id("prx"),
            "rx_order_id": world.new_id("rxo") if rng.random() < 0.8 else None,
        }
        for drug in drugs
    ]
    enc.steps.append(
        (
            "prescription_submitted",
            "created_at",
            {
                **ids,
                "order_number": order_number,
                "medication": [
                    {
                        "quantity": item["drug"].quantity,
                        "directions": item["drug"].directions,
                        "prescribed_item_id": item["prescribed_item_id"],
                        "rx_order_id": item["rx_order_id"],
                        "medication": item["drug"].name,
                    }
                    for item in items
                ],
                "special_necessities": rng.choice(_SPECIAL) if rng.random() < 0.3 else None,
            },
        )
    )
    _order(enc, order_number, "created")
    if rng.random() < 0.4:
        _messages(enc, world, rng.choice(_AFTER_RX))
    elif rng.random() < 0.3:
        _messages(enc, world, (_NOTE,), channel="internal")
    if rng.random() < 0.25:
        _messages(enc, world, rng.choice(_SIDE_EFFECT), doctor_first=False)
        changed = rng.sample(items, rng.randint(1, len(items)))
        enc.steps.append(
            (
                "prescription_dosage_changed",
                "created_at",
                {
                    **ids,
                    "order_number": order_number,
                    "medication": [
                        {
                            "quantity": item["drug"].adjusted_quantity,
                            "directions": item["drug"].adjusted,
                            "prescribed_item_id": item["prescribed_item_id"],
                            "rx_order_id": item["rx_order_id"],
                            "medication": item["drug"].name,
                        }
                        for item in changed
                    ],
                    "dosage_change": True,
                },
            )
        )
        _order(enc, order_number, "updated")
    _order(enc, order_number, "shipped")
    _order(enc, order_number, "delivered")
    if rng.random() < 0.1:
        _messages(enc, world, _DAMAGED, doctor_first=False)
        _order(enc, order_number, "reshipped")
        _order(enc, order_number, "delivered")
    if rng.random() < 0.3:
        _messages(enc, world, _THANKS, doctor_first=False)
    return enc


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


# --- pacing ----------------------------------------------------------------------------------


@dataclass
class Summary:
    planned: int
    rate: float
    seed: int | None = None
    dry_run: bool = False
    events: int = 0
    deliveries: int = 0
    by_event: Counter[str] = field(default_factory=Counter)
    elapsed_seconds: float = 0.0
    interrupted: bool = False

    @property
    def achieved_rate(self) -> float:
        return self.events / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "planned_events": self.planned,
            "events_by_type": dict(sorted(self.by_event.items())),
            "deliveries": self.deliveries,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "target_rate": round(self.rate, 3),
            "achieved_rate": round(self.achieved_rate, 3),
            "seed": self.seed,
            "dry_run": self.dry_run,
            "interrupted": self.interrupted,
        }


def run(
    stream: Iterable[tuple[str, dict[str, Any]]],
    *,
    rate: float,
    count: int,
    send: Callable[[str, dict[str, Any]], int],
    summary: Summary | None = None,
    on_event: Callable[[Summary], None] | None = None,
    pace: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Summary:
    """Sends ``count`` events from ``stream``, the i-th due ``i / rate`` seconds after the start.

    ``send(event, data)`` returns how many deliveries it created. A late send does not shift
    the schedule: the next ones go out at once until it is caught up. Ctrl-C stops the run
    and marks the summary ``interrupted``.
    """
    summary = summary or Summary(planned=count, rate=rate)
    started = clock()
    try:
        for index, (event, data) in enumerate(stream):
            if index >= count:
                break
            if pace:
                wait = started + index / rate - clock()
                if wait > 0:
                    sleep(wait)
            summary.deliveries += send(event, data)
            summary.events += 1
            summary.by_event[event] += 1
            summary.elapsed_seconds = clock() - started
            if on_event is not None:
                on_event(summary)
        if pace:
            # The run lasts its duration: the last event's slot ends 1/rate after it went out.
            wait = started + summary.events / rate - clock()
            if wait > 0:
                sleep(wait)
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.elapsed_seconds = clock() - started
    return summary


def planned_events(rate: float, duration_seconds: float) -> int:
    """Events a run sends: ``rate × duration``, at least one."""
    return max(1, round(rate * duration_seconds))


def start_for(seed: int | None, now: datetime | None = None) -> datetime:
    """The simulated clock's start: :data:`SIM_EPOCH` with a seed (reproducible), else now."""
    if seed is not None:
        return SIM_EPOCH
    return (now or datetime.now(UTC)).replace(microsecond=0)


__all__ = [
    "DISPATCHED_BY",
    "SIM_EPOCH",
    "Summary",
    "generate",
    "message_id",
    "parse_duration",
    "parse_rate",
    "planned_events",
    "run",
    "start_for",
]
