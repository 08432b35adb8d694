"""Sealing the rows already in the log with the storage keys, as the door :class:`Storage`:
``dispatcher storage encrypt`` (rows written before keys were set) and ``dispatcher storage
rotate`` (rows under a key other than the first); no click here. Both are resumable and safe
while workers run (:mod:`dispatcher.store.resealing`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from ..runtime import Runtime
from ..store import erasure, resealing
from ..vocabulary import AuditAction
from .bulk import Progress
from .door import Door, Plan


def plural(n: int, word: str) -> str:
    """``1 value``, ``3 values`` (the words of a plan's description)."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")


@dataclass
class StorageReport:
    mode: str
    key_id: str
    """The first key's id: what every value is sealed under afterwards."""
    to_do: dict[str, int]
    sealed: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    dry_run: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document: every field, in their order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def counts(self) -> dict[str, int]:
        """The audit row's counts."""
        return {
            "to_do": sum(self.to_do.values()),
            "sealed": sum(self.sealed.values()),
            "unreadable": len(self.unreadable),
        }


class Storage(Door[StorageReport]):
    """Seals, under the first storage key, every value its ``mode`` selects (:class:`Encrypt`,
    :class:`Rotate`)."""

    mode: ClassVar[str]
    """``encrypt`` or ``rotate``, as :mod:`dispatcher.store.resealing` names them."""

    def plan(self, runtime: Runtime) -> Plan:
        """What the mode has still to do, per column (the plan's ``details``).

        Raises:
            ValueError: no storage keys are configured.
        """
        keyring = runtime.keyring
        if not keyring.sealing:
            raise ValueError(
                "no storage_keys are configured: set DISPATCHER_STORAGE_KEYS or storage_keys "
                "(dispatcher keys generate --storage prints a new key)"
            )
        key_id, to_do = keyring.key_ids[0], resealing.count_to_do(runtime.engine, keyring, self.mode)
        total = sum(to_do.values())
        return Plan(
            action=self.action,
            count=total,
            description=(
                f"{plural(total, 'value')} to {'seal' if self.mode == 'encrypt' else 're-seal'} under storage "
                f"key {key_id} ({', '.join(f'{column}: {n:,}' for column, n in to_do.items())})"
            ),
            selection={"key_id": key_id},
            details=to_do,
        )

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> StorageReport:
        """Seals every value still to do, column by column, a batch per transaction."""
        report = self._report(plan, dry_run=False)
        done = resealing.reseal(runtime.engine, runtime.keyring, self.mode, progress)
        report.sealed, report.unreadable = done.sealed, done.unreadable
        erasure.compact(runtime.engine)
        return report

    def previewed(self, runtime: Runtime, plan: Plan, *, dry_run: bool) -> StorageReport:
        """What is still to do as a report, sealing nothing (a preview is not audited)."""
        return self._report(plan, dry_run=dry_run)

    def _report(self, plan: Plan, *, dry_run: bool) -> StorageReport:
        to_do = {column: int(n) for column, n in plan.details.items()}
        return StorageReport(self.mode, str(plan.selection["key_id"]), to_do, dry_run=dry_run)


class Encrypt(Storage):
    """Seals every value written before storage keys were set (plain text)."""

    action = AuditAction.STORAGE_ENCRYPT
    mode = "encrypt"


class Rotate(Storage):
    """Re-seals every value sealed under a key other than the first."""

    action = AuditAction.STORAGE_ROTATE
    mode = "rotate"
