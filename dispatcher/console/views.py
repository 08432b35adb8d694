"""What the delivery page shows of a delivery: its wrapper with ``data`` held back, and each
attempt with what the partner answered -- its error (the reason phrase) and its body's first
bytes -- held back, until an operator reveals them. Anyone signed in sees each attempt's
outcome, HTTP status and failure kind. Pure."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

FIRST_BYTES = 512
"""How much of an answer the timeline shows, once revealed."""
HIDDEN = "(hidden: event data is PHI; an operator may reveal it, and that is audited)"


def wrapper_text(payload: Any, reveal: bool, mask: Callable[[str], str]) -> str | None:
    """The stored wrapper as indented JSON, ``data`` replaced by a note unless ``reveal``; None
    when the payload is gone (erased). Secrets in it are masked either way."""
    if payload is None:
        return None
    if isinstance(payload, Mapping):
        shown = dict(payload)
        if "data" in shown and not reveal:
            shown["data"] = HIDDEN
        return mask(json.dumps(shown, indent=2, ensure_ascii=False, default=str))
    return mask(str(payload)) if reveal else HIDDEN


def timeline(attempts: list[Mapping[str, Any]], reveal: bool) -> list[dict[str, Any]]:
    """The attempts, oldest first, each with its error and the first bytes of its answer when
    revealed (the document's texts are masked already:
    :func:`dispatcher.ops.documents.delivery_document`)."""
    rows = []
    for attempt in attempts:
        body, error = attempt.get("response_body"), attempt.get("error")
        row = {k: v for k, v in attempt.items() if k not in ("response_body", "error")}
        row["has_body"], row["has_error"] = bool(body), bool(error)
        row["body"] = (
            (body[:FIRST_BYTES] + ("…" if len(body) > FIRST_BYTES else "")) if reveal and body else None
        )
        row["error"] = error if reveal else None
        rows.append(row)
    return rows


def has_phi(document: Mapping[str, Any]) -> bool:
    """Whether revealing would show anything: event data, an answer's body or an attempt's error."""
    return document.get("payload") is not None or any(
        a.get("response_body") or a.get("error") for a in document["attempts"]
    )
