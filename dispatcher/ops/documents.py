"""The documents operators read: one delivery with every attempt (``log show``, the console's
delivery page), and its reveal -- the same document for a person who asked to see its PHI,
audited (:func:`reveal`). No click here.

A stored payload is shown parsed when it reads back as portable JSON: it parses, holds no NaN,
Infinity or lone surrogate, and nests at most :data:`READABLE_DEPTH` levels within the document
(every payload the current contract accepts nests at most ``MAX_DEPTH + 2``). A payload stored
by an older version that is not (nesting deep enough to exhaust a parser, a NaN, ...) is shown
as the stored text, with ``payload_note`` saying why: a document is always readable.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Engine

from .. import store
from ..contract.json_safety import json_problems
from ..errors import DeliveryNotFound
from ..redaction import Masker, mask_url
from ..runtime import Runtime
from ..store.sealing import Unreadable
from ..vocabulary import AuditAction
from .door import Actor, record

READABLE_DEPTH = 64
"""Levels of arrays and objects a document may hold (the document itself is level 1), the
default limit of .NET's JSON readers and within those of jq, Python and the rest."""


def readable_payload(text: str | None) -> tuple[Any, str | None]:
    """The stored payload parsed, and None; or, when it cannot be read back as portable JSON,
    the stored text itself and a note saying why; or None and a note when it was erased or no
    configured storage key opens it."""
    if text is None:
        return None, "the payload was erased (retention or log erase); the row keeps the rest"
    if isinstance(text, Unreadable):
        return None, f"the stored payload cannot be read: {text.problem}"
    try:
        value = json.loads(text)
    except (RecursionError, ValueError) as exc:  # too deep for the parser, not JSON, huge integers
        reason = str(exc) if len(str(exc)) <= 80 else str(exc)[:77] + "..."
        return (
            text,
            f"the stored payload cannot be parsed back ({type(exc).__name__}: {reason}); shown as stored text",
        )
    problems = json_problems(
        value, "payload", depth=2, max_depth=READABLE_DEPTH, exact_integers=False, limit=1
    )
    if problems:
        return text, f"the stored payload is not portable JSON ({problems[0]}); shown as stored text"
    return value, None


MASKED_COLUMNS = frozenset({"error", "response_body"})
"""Texts a partner's answer shaped: an older version may have stored a secret in them. They are
PHI too (sealed, erased with the payload, shown to operators only); an attempt's ``outcome``,
``http_status`` and ``failure`` (why no answer came) say what happened without them."""


def delivery_document(engine: Engine, request_id: str, masker: Masker | None = None) -> dict[str, Any]:
    """The ``log show --json`` document of a delivery. ``masker`` takes secrets out of the texts
    a partner wrote (errors, answers) and credentials out of the URL: rows an older version
    stored may hold them.

    Raises:
        DeliveryNotFound: no delivery has that request_id.
    """
    delivery = store.get_delivery(engine, request_id)
    if delivery is None:
        raise DeliveryNotFound(request_id)
    payload, note = readable_payload(delivery["payload"])
    document = {name: delivery[name] for name in store.DELIVERY_FIELDS}
    document.update(
        {
            "url": mask_url(delivery["url"]),
            "reason": delivery["reason"],
            "next_attempt_at": delivery["next_attempt_at"],
            "replay_of": delivery["replay_of"],
            "payload_erased_at": delivery["payload_erased_at"],
            "payload": payload,
            "payload_note": note,
        }
    )
    mask = masker or Masker(())
    document["attempts"] = [
        {
            **{
                name: mask(attempt[name]) if name in MASKED_COLUMNS else attempt[name]
                for name in store.ATTEMPT_FIELDS
            },
            "failure": attempt.get("failure"),
        }
        for attempt in store.list_attempts(engine, request_id)
    ]
    document["attempt_count"] = delivery["attempts"]
    return document


def reveal(runtime: Runtime, request_id: str, actor: Actor) -> dict[str, Any]:
    """The delivery's document for ``actor``, who asked to see its PHI (event data, the partner's
    answers): the ``delivery reveal`` audit row is written before the document is returned.

    Raises:
        DeliveryNotFound: no delivery has that request_id (nothing is audited).
    """
    document = delivery_document(runtime.engine, request_id, runtime.masker)
    record(runtime, actor, AuditAction.DELIVERY_REVEAL, {"request_id": request_id}, {})
    return document
