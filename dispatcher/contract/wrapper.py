"""The standard wrapper of the seed: building it once at dispatch, rendering it per attempt.

The stored body is the wrapper as dispatched (``retry: false``, never a key). Each attempt
renders the bytes it sends from it: ``retry`` set for attempts after the first, and
``webhook_key`` added only for endpoints with ``include_key_in_body``.

The data is validated before it is wrapped, so the body is portable JSON; :func:`build` checks
the metadata strings it is given the same way, and :func:`dumps` refuses NaN and Infinity as
a last line of defence.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import InvalidEventData
from .json_safety import json_problems

WEBHOOK_VERSION = "v1.0"
REDACTED = "[redacted]"


def build(
    *,
    event: str,
    timestamp: str,
    data: dict[str, Any],
    source: str,
    environment: str,
    request_id: str,
    dispatched_by: str,
) -> dict[str, Any]:
    """The wrapper with its keys in the seed's order.

    Raises:
        InvalidEventData: a metadata string (``dispatched_by``, or ``source`` or ``environment``
            from the settings) cannot be encoded as UTF-8, naming it as ``metadata.<name>``.
    """
    metadata = {"source": source, "environment": environment, "dispatched_by": dispatched_by}
    problems = [p for name, text in metadata.items() for p in json_problems(text, f"metadata.{name}")]
    if problems:
        raise InvalidEventData(event, problems)
    return {
        "event": event,
        "timestamp": timestamp,
        "data": data,
        "metadata": {
            "source": source,
            "environment": environment,
            "webhook_version": WEBHOOK_VERSION,
            "request_id": request_id,
            "dispatched_by": dispatched_by,
            "retry": False,
        },
    }


def dumps(body: dict[str, Any]) -> str:
    """The one serialization used for sizes, storage and the wire (UTF-8 kept readable).

    Raises:
        ValueError: the body holds NaN or Infinity, which are not JSON. Validation keeps them
            out of every new body; a body stored by an older version may still hold them, and
            is then never sent.
    """
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def render(stored: dict[str, Any], *, retry: bool, webhook_key: str | None) -> tuple[bytes, str]:
    """The bytes to send for one attempt, and the same body with the key redacted for the log.

    Args:
        stored: the wrapper as stored at dispatch.
        retry: whether this attempt is a retry (attempt number > 1).
        webhook_key: the key to put in ``metadata.webhook_key``, or None to leave it out.

    Returns:
        (wire bytes, loggable text)
    """
    metadata = dict(stored["metadata"])
    metadata["retry"] = retry
    if webhook_key is not None:
        metadata["webhook_key"] = webhook_key
    body = {**stored, "metadata": metadata}
    wire = dumps(body)
    if webhook_key is None:
        return wire.encode("utf-8"), wire
    metadata_logged = {**metadata, "webhook_key": REDACTED}
    return wire.encode("utf-8"), dumps({**stored, "metadata": metadata_logged})
