"""The log database's schema for operators: ``dispatcher db upgrade | downgrade | current |
check`` (no click here).

An upgrade runs the migrations (:mod:`dispatcher.store.versioning`) and then indexes the
deliveries written before patient keys existed, so ``log erase --patient-id`` finds them too;
both are safe to run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from ..store import erasure, versioning
from ..store.sealing import Keyring


@dataclass
class UpgradeReport:
    before: str | None
    after: str | None
    applied: list[str]
    stamped: str | None = None
    """The baseline a database made before migrations was recognised as."""
    indexed: int = 0
    unindexed: list[str] = field(default_factory=list)
    """Deliveries whose payload no configured key opens: indexed once the key is configured."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "before": self.before,
            "after": self.after,
            "stamped": self.stamped,
            "applied": self.applied,
            "indexed": self.indexed,
            "unindexed": self.unindexed,
        }


def upgrade(
    engine: Engine, target: str = "head", on_step: Callable[[str], None] | None = None
) -> UpgradeReport:
    """Runs the migrations up to ``target``.

    Raises:
        ValueError: ``target`` is not a revision.
        SchemaUnknown: the database is at a revision this version does not know.
    """
    before = versioning.current(engine)
    stamped: list[str] = []
    applied = versioning.upgrade(engine, target, on_step, on_stamp=stamped.append)
    after = versioning.current(engine).revision
    return UpgradeReport(before.revision, after, applied, stamped=stamped[0] if stamped else None)


def unindexed(engine: Engine, report: UpgradeReport) -> int:
    """Deliveries still to index, once the database is at head (0 before)."""
    return erasure.count_unindexed(engine) if report.after == versioning.HEAD else 0


def index(
    engine: Engine, keyring: Keyring, report: UpgradeReport, progress: Callable[[int], None] | None = None
) -> None:
    """Stores the patient and encounter keys of the deliveries that have none."""
    before = erasure.count_unindexed(engine)
    report.unindexed = erasure.index_missing(engine, keyring, progress)
    report.indexed = before - len(report.unindexed)


def status(engine: Engine) -> dict[str, Any]:
    state = versioning.current(engine)
    return {
        "revision": state.revision,
        "state": state.kind,
        "head": versioning.HEAD,
        "revisions": list(versioning.REVISIONS),
        "description": state.describe(),
    }
