"""The audit trail for operators: who is acting, writing what they did, and reading it back
(``dispatcher audit list``; no click here).

The actor is the OS user running the command (the console passes its signed-in user). What an
action writes is its selection and its counts, never PHI: a patient is named by the key stored
with their deliveries, not by their id.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from .. import store
from ..store import audit
from ..vocabulary import AuditAction

ACTIONS: tuple[str, ...] = tuple(a.value for a in AuditAction)
"""Every action that writes an audit row (:class:`~dispatcher.vocabulary.AuditAction`)."""


def os_actor() -> str:
    """The OS user running this process (``user@host`` is not needed: one host runs the CLI)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's)
        return f"uid {os.getuid()}"


def record(
    engine: Engine,
    action: AuditAction,
    selection: Mapping[str, Any],
    counts: Mapping[str, Any],
    actor: str | None = None,
) -> None:
    """Writes one audit row (doors call this through :func:`dispatcher.ops.door.record`)."""
    audit.record(engine, actor or os_actor(), AuditAction(action), selection, counts)


def described(selection: store.Selection, **more: Any) -> dict[str, Any]:
    """A selection's set fields (and ``more``), as an audit row's selection."""
    fields = {name: getattr(selection, name) for name in selection.__dataclass_fields__}
    return {k: v for k, v in {**fields, **more}.items() if v not in (None, (), False, "")}


def entries(
    engine: Engine, since: datetime | None = None, limit: int | None = None
) -> list[audit.AuditEntry]:
    return audit.entries(engine, since, limit)
