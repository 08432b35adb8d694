"""Erasing the PHI of chosen deliveries: ``dispatcher log erase`` (no click here), as the door
:class:`Erase`.

By request id, or every delivery of a patient (and one encounter of theirs), found through the
keyed hashes stored with each delivery, so no payload is opened to find them. Erasing is what
retention does (:mod:`dispatcher.store.erasure`); a delivery still to be sent (queued, in flight,
retrying) is reported and left alone -- erase it once it is final.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from ..runtime import Runtime
from ..store import erasure
from ..store.sealing import Keyring
from ..times import utcnow
from ..vocabulary import FINAL_STATUSES, AuditAction
from .bulk import BATCH_SIZE, ID_CAP, IdList, Progress, deliveries
from .door import Door, Plan


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
        """The ``--json`` document: the numbers, then the request ids by what happens to them."""
        to_erase = {"request_ids": self.to_erase.items, "request_ids_truncated": self.to_erase.truncated}
        return {**self._done(), "dry_run": self.dry_run, **to_erase, **self._left_alone()}

    def counts(self) -> dict[str, int]:
        """The audit row's counts: the numbers, and how many ids of each kind were left alone."""
        return {**self._done(), **{kind: len(ids) for kind, ids in self._left_alone().items()}}

    def _done(self) -> dict[str, int]:
        return {"matched": self.matched, "erased": self.erased, "attempts_erased": self.attempts_erased}

    def _left_alone(self) -> dict[str, list[Any]]:
        return {
            "already_erased": self.already_erased.items,
            "pending": self.pending.items,
            "not_found": self.not_found,
        }


@dataclass(frozen=True, kw_only=True)
class ErasePlan(Plan):
    """An erase's plan, with what it found: the run erases the deliveries the person saw."""

    found: tuple[erasure.PatientDelivery, ...]
    missing: tuple[str, ...]
    """Request ids asked for that are not in the log."""


def _sorted(found: Sequence[erasure.PatientDelivery]) -> tuple[list[str], list[str], list[str]]:
    """The request ids of ``found``: to erase (final, not erased yet), still to be sent (left
    alone), already erased."""
    chosen: list[str] = []
    pending: list[str] = []
    already: list[str] = []
    for delivery in found:
        if delivery.erased:
            already.append(delivery.request_id)
        elif delivery.status not in FINAL_STATUSES:
            pending.append(delivery.request_id)
        else:
            chosen.append(delivery.request_id)
    return chosen, pending, already


def _report(plan: ErasePlan, *, dry_run: bool) -> EraseReport:
    """The report before anything is erased: what will be, and what is left alone and why."""
    chosen, pending, already = _sorted(plan.found)
    report = EraseReport(matched=len(plan.found), dry_run=dry_run, not_found=list(plan.missing))
    report.already_erased.extend(already)
    report.pending.extend(pending)
    report.to_erase.extend(chosen)
    return report


class Erase(Door[EraseReport]):
    """Erases the PHI of chosen deliveries: ``request_ids``, or every delivery of ``patient_id``
    (of ``encounter_id`` only, when given).

    Raises:
        ValueError: neither or both of ``request_ids`` and ``patient_id``, or ``encounter_id``
            without ``patient_id``.
    """

    action = AuditAction.LOG_ERASE

    def __init__(
        self, request_ids: Sequence[str] = (), patient_id: str | None = None, encounter_id: str | None = None
    ) -> None:
        if bool(request_ids) == bool(patient_id):
            raise ValueError("request_ids or patient_id: give one of them, not both and not neither")
        if encounter_id is not None and not patient_id:
            raise ValueError("encounter_id: needs patient_id")
        self.request_ids = tuple(request_ids)
        self.patient_id = patient_id
        self.encounter_id = encounter_id

    def plan(self, runtime: Runtime) -> ErasePlan:
        """Finds the deliveries. A patient's rows written before the keyed hashes existed are
        indexed first (their keys stored; nothing a person reads changes)."""
        if self.patient_id:
            found = by_patient(runtime.engine, runtime.keyring, self.patient_id, self.encounter_id)
            missing: list[str] = []
        else:
            found, missing = by_request_ids(runtime.engine, self.request_ids)
        chosen, pending, already = _sorted(found)
        return ErasePlan(
            action=self.action,
            count=len(chosen),
            description=f"{deliveries(len(found))} found; {deliveries(len(chosen))} to erase",
            selection=self._selection(runtime.keyring),
            details={"pending": len(pending), "already_erased": len(already), "not_found": len(missing)},
            found=tuple(found),
            missing=tuple(missing),
        )

    def _selection(self, keyring: Keyring) -> dict[str, Any]:
        """The audit row's selection: the request ids (the first :data:`~.bulk.ID_CAP`), or the
        patient's (and encounter's) stored keys -- never their ids."""
        if not self.patient_id:
            return {"request_ids": list(self.request_ids)[:ID_CAP]}
        selection = {"patient_key": keyring.index(self.patient_id)}
        if self.encounter_id is not None:
            selection["encounter_key"] = keyring.index(self.encounter_id)
        return selection

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> EraseReport:
        """Erases the PHI of the final deliveries the plan found, a batch per transaction."""
        erase_plan = _erase_plan(plan)
        report = _report(erase_plan, dry_run=False)
        chosen, stamp = _sorted(erase_plan.found)[0], utcnow()
        for start in range(0, len(chosen), BATCH_SIZE):
            batch = chosen[start : start + BATCH_SIZE]
            erased = erasure.erase(runtime.engine, batch, stamp)
            report.erased += erased.deliveries
            report.attempts_erased += erased.attempts
            if progress:
                progress(len(batch))
        erasure.compact(runtime.engine)
        return report

    def previewed(self, runtime: Runtime, plan: Plan, *, dry_run: bool) -> EraseReport:
        """What the plan found, erasing nothing: a dry run's report, whether asked for or for
        lack of anything to erase."""
        return _report(_erase_plan(plan), dry_run=True)

    def preview_audit(self, plan: Plan, *, dry_run: bool) -> dict[str, Any]:
        """Every preview is audited, with ``dry_run`` in the selection, as every look at a
        patient's deliveries is."""
        return {**plan.selection, "dry_run": True}


def _erase_plan(plan: Plan) -> ErasePlan:
    """``plan``, which an :class:`Erase` made."""
    if not isinstance(plan, ErasePlan):
        raise TypeError("an Erase runs the ErasePlan its plan() made")
    return plan


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
