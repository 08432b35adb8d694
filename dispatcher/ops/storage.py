"""Sealing the rows already in the log with the storage keys: ``dispatcher storage encrypt``
(rows written before keys were set) and ``dispatcher storage rotate`` (rows under a key other
than the first); no click here. Both are resumable and safe while workers run
(:mod:`dispatcher.store.resealing`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from ..store import erasure, resealing
from ..store.sealing import Keyring
from .bulk import Progress


@dataclass
class StorageReport:
    mode: str
    key_id: str
    """The first key's id: what every value is sealed under afterwards."""
    to_do: dict[str, int]
    dry_run: bool
    sealed: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "key_id": self.key_id,
            "to_do": self.to_do,
            "sealed": self.sealed,
            "unreadable": self.unreadable,
            "dry_run": self.dry_run,
        }

    def counts(self) -> dict[str, int]:
        return {
            "to_do": sum(self.to_do.values()),
            "sealed": sum(self.sealed.values()),
            "unreadable": len(self.unreadable),
        }


def plan(engine: Engine, keyring: Keyring, mode: str) -> StorageReport:
    """What ``mode`` has still to do, per column.

    Raises:
        ValueError: no storage keys are configured.
    """
    if not keyring.sealing:
        raise ValueError(
            "no storage_keys are configured: set DISPATCHER_STORAGE_KEYS or storage_keys "
            "(dispatcher keys generate --storage prints a new key)"
        )
    return StorageReport(mode, keyring.key_ids[0], resealing.count_to_do(engine, keyring, mode), dry_run=True)


def run(engine: Engine, keyring: Keyring, mode: str, progress: Progress | None = None) -> StorageReport:
    report = plan(engine, keyring, mode)
    report.dry_run = False
    done = resealing.reseal(engine, keyring, mode, progress)
    report.sealed, report.unreadable = done.sealed, done.unreadable
    erasure.compact(engine)
    return report
