"""Every payload the documents show -- a ```json block in README.md or docs/*.md that has both
``"metadata"`` and ``"data"`` -- is a body the published JSON Schema of its event takes, with
formats checked: a real UUID as ``request_id``, real times, the seed's fields. A placeholder
(``"request_id": "uuid"``) or a template (``"event": "event_name"``, ``// comments``) in a
```json block fails here; show those as ```text instead."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dispatcher.contract.catalogue import CATALOGUE, events_markdown
from dispatcher.contract.schemas import example_payload
from tests.conftest import ROOT

from .published import body_validator

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```json[ \t]*\n(.*?)^```", re.S | re.M)


def payload_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, text) of each ```json block that mentions both "metadata" and "data"."""
    return [
        (text.count("\n", 0, found.start()) + 2, found.group(1))
        for found in FENCE.finditer(text)
        if '"metadata"' in found.group(1) and '"data"' in found.group(1)
    ]


def problems(text: str, name: str) -> list[str]:
    """One line per payload block of a document that the schema of its event refuses."""
    found = []
    for line, block in payload_blocks(text):
        where = f"{name}:{line}"
        try:
            body = json.loads(block)
        except ValueError as exc:
            found.append(f"{where}: not JSON ({exc}); show a template as ```text")
            continue
        event = body.get("event") if isinstance(body, dict) else None
        if event not in CATALOGUE:
            found.append(f"{where}: event {event!r} is not one of the six")
            continue
        for error in body_validator(event).iter_errors(body):
            path = ".".join(str(p) for p in error.absolute_path) or "(body)"
            found.append(f"{where}: {path}: {error.message}")
    return found


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_payload_a_document_shows_passes_its_schema_with_formats(page: Path) -> None:
    assert problems(page.read_text(), page.name) == []


def test_the_scanner_finds_a_placeholder_a_template_and_passes_a_real_payload() -> None:
    good = example_payload(CATALOGUE["order_changed"])
    placeholder = json.loads(json.dumps(good).replace(good["metadata"]["request_id"], "uuid"))
    text = "\n".join(
        [
            "# A page",
            "```json",
            json.dumps(good),
            "```",
            "```json",
            json.dumps(placeholder),
            "```",
            "```json",
            '{"event": "event_name", "data": {\n  // Event-specific payload\n}, "metadata": {}}',
            "```",
            "```json",
            '{"not": "a payload"}',
            "```",
            events_markdown(),
        ]
    )
    assert len(payload_blocks(text)) == 3
    found = problems(text, "page.md")
    assert len(found) == 2
    assert found[0].startswith("page.md:6: metadata.request_id: 'uuid' is not a 'uuid'")
    assert found[1].startswith("page.md:9: not JSON")


def test_a_payload_of_an_unknown_event_or_with_a_bad_time_is_named() -> None:
    body = example_payload(CATALOGUE["case_assigned_to_clinician"])
    body["data"]["assigned_at"] = "2026-01-30 12:00"
    other = {**example_payload(CATALOGUE["order_changed"]), "event": "order_shipped"}
    text = f"```json\n{json.dumps(body)}\n```\n\n```json\n{json.dumps(other)}\n```\n"
    found = problems(text, "x.md")
    assert found[0].startswith("x.md:2: data.assigned_at: ")
    assert found[-1] == "x.md:6: event 'order_shipped' is not one of the six"
