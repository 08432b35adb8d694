"""Erasing the PHI of chosen deliveries: ``dispatcher log erase`` (no click here).

By request id, or every delivery of a patient (and one encounter of theirs), found through the
keyed hashes stored with each delivery, so no payload is opened to find them. Erasing is what
retention does (:mod:`dispatcher.store.erasure`); a delivery still to be sent (queued, in flight,
retrying) is reported and left alone -- erase it once it is final.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from ..store import erasure
from ..store.sealing import Keyring
from ..times import utcnow
from ..vocabulary import FINAL_STATUSES
from .bulk import BATCH_SIZE, IdList, Progress


@dataclass
class EraseReport:
    matched: int
    dry_run: bool
    erased: int = 0
    attempts_erased: int = 0
    already_erased: IdList = field(default_factory=IdList)
    pending: IdList = field(default_factory=IdList)
    """Still to be sent: left alone."""
    not_found: list[str] = field(default_factory=list)
    to_erase: IdList = field(default_factory=IdList)

    def as_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "erased": self.erased,
            "attempts_erased": self.attempts_erased,
            "dry_run": self.dry_run,
            "request_ids": self.to_erase.items,
            "request_ids_truncated": self.to_erase.truncated,
            "already_erased": self.already_erased.items,
            "pending": self.pending.items,
            "not_found": self.not_found,
        }

    def counts(self) -> dict[str, int]:
        return {
            "matched": self.matched,
            "erased": self.erased,
            "attempts_erased": self.attempts_erased,
            "already_erased": len(self.already_erased.items),
            "pending": len(self.pending.items),
            "not_found": len(self.not_found),
        }


def by_request_ids(
    engine: Engine, request_ids: Sequence[str]
) -> tuple[list[erasure.PatientDelivery], list[str]]:
    """The deliveries of ``request_ids`` (as a patient's would be found) and the ids not in the log."""
    found = erasure.deliveries_by_id(engine, request_ids)
    known = {d.request_id for d in found}
    return found, [rid for rid in dict.fromkeys(request_ids) if rid not in known]


def by_patient(
    engine: Engine, keyring: Keyring, patient_id: str, encounter_id: str | None = None
) -> list[erasure.PatientDelivery]:
    """Every delivery of the patient (of that encounter, when given): rows not indexed yet
    (written before the keys existed) are indexed first."""
    if erasure.count_unindexed(engine):
        erasure.index_missing(engine, keyring)
    encounters = keyring.candidates(encounter_id) if encounter_id is not None else ()
    return erasure.patient_deliveries(engine, keyring.candidates(patient_id), encounters)


def erase(
    engine: Engine,
    found: Sequence[erasure.PatientDelivery],
    *,
    dry_run: bool = False,
    not_found: Sequence[str] = (),
    now: datetime | None = None,
    progress: Progress | None = None,
) -> EraseReport:
    """Erases the PHI of the final ones of ``found``; reports the others."""
    report = EraseReport(matched=len(found), dry_run=dry_run, not_found=list(not_found))
    chosen = []
    for delivery in found:
        if delivery.erased:
            report.already_erased.extend([delivery.request_id])
        elif delivery.status not in FINAL_STATUSES:
            report.pending.extend([delivery.request_id])
        else:
            chosen.append(delivery.request_id)
    report.to_erase.extend(chosen)
    if dry_run:
        return report
    stamp = now or utcnow()
    for start in range(0, len(chosen), BATCH_SIZE):
        batch = chosen[start : start + BATCH_SIZE]
        erased = erasure.erase(engine, batch, stamp)
        report.erased += erased.deliveries
        report.attempts_erased += erased.attempts
        if progress:
            progress(len(batch))
    erasure.compact(engine)
    return report
