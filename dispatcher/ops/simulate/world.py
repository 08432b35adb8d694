"""The world the traffic simulator draws from: names, a small formulary, what patients and
clinicians say to each other. Data only."""

from __future__ import annotations

from dataclasses import dataclass

FIRST_NAMES = ("Amara", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonah")
LAST_NAMES = ("Okafor", "Lindqvist", "Moreau", "Nakamura", "Patel", "Quinn", "Rossi", "Silva", "Tanaka")
SUPPORT = (("support_agent_01", "Baremeds Support"), ("support_agent_02", "Care Team"))


@dataclass(frozen=True)
class Drug:
    name: str
    quantity: int
    directions: str
    adjusted: str
    adjusted_quantity: int


FORMULARY = (
    Drug(
        "Sertraline 50 mg tablet",
        30,
        "Take 1 tablet by mouth once daily",
        "Take 1 and 1/2 tablets by mouth once daily",
        45,
    ),
    Drug(
        "Finasteride 1 mg tablet",
        90,
        "Take 1 tablet by mouth once daily",
        "Take 1 tablet every other day",
        45,
    ),
    Drug(
        "Tretinoin 0.025% cream 20 g",
        1,
        "Apply a pea-sized amount to the face at bedtime",
        "Apply a pea-sized amount every other night",
        1,
    ),
    Drug(
        "Metformin ER 500 mg tablet",
        30,
        "Take 1 tablet with the evening meal",
        "Take 2 tablets with the evening meal",
        60,
    ),
    Drug(
        "Semaglutide 0.25 mg/0.5 mL pen",
        1,
        "Inject 0.25 mg under the skin once weekly",
        "Inject 0.5 mg under the skin once weekly",
        1,
    ),
    Drug(
        "Spironolactone 50 mg tablet",
        30,
        "Take 1 tablet by mouth every morning",
        "Take 2 tablets by mouth every morning",
        60,
    ),
    Drug(
        "Sildenafil 20 mg tablet",
        30,
        "Take 1 to 3 tablets 1 hour before activity as needed",
        "Take 2 to 5 tablets 1 hour before activity as needed",
        60,
    ),
    Drug(
        "Ondansetron 4 mg ODT",
        10,
        "Dissolve 1 tablet on the tongue every 8 hours as needed for nausea",
        "Dissolve 1 tablet on the tongue every 12 hours as needed for nausea",
        10,
    ),
)
SPECIAL = (
    "Ship in discreet packaging",
    "Patient prefers delivery to work address",
    "Keep refrigerated in transit",
    "Signature required on delivery",
)
CANCEL_REASONS = (
    "Patient request",
    "Duplicate encounter",
    "Not a candidate for telehealth treatment; referred to in-person care",
    "Patient unreachable after 3 attempts",
    "Payment not completed",
)
INTAKE = (
    (
        "Hi, I'm reviewing your intake. Are you taking any other medications?",
        "Only a daily multivitamin.",
    ),
    ("Do you have any known drug allergies?", "None that I know of."),
    ("How long have you had these symptoms?", "About three months now."),
    ("Any history of liver or kidney problems?", "No, my last blood work was normal."),
)
AFTER_RX = (
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
SIDE_EFFECT = (
    ("I've had mild headaches since starting.", "Let's adjust the dose; I've updated your prescription."),
    ("It doesn't seem to be working yet.", "We'll increase the dose a little; see the updated directions."),
    ("I feel a bit dizzy in the mornings.", "I've changed the directions; tell me how the next week goes."),
)
DAMAGED = (
    "The package arrived damaged and the seal was broken.",
    "Sorry about that! We've arranged a replacement shipment.",
)
THANKS = ("Received my order, thank you!", "Great, reach out any time.")
NOTE = "Chart reviewed; no interactions found."
