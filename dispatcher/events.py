"""The six events of the partner contract as typed models (defined in
:mod:`dispatcher.contract.events`)::

    from dispatcher import dispatch
    from dispatcher.events import OrderChanged

    dispatch(OrderChanged(order_number="ORDER123", status="updated", created_at="2026-01-30T12:00:00Z"))
"""

from .contract.events import (
    CaseAssignedToClinician,
    EncounterCancelled,
    EventData,
    Medication,
    MessageCreated,
    OrderChanged,
    PrescriptionDosageChanged,
    PrescriptionSubmitted,
)

__all__ = [
    "CaseAssignedToClinician",
    "EncounterCancelled",
    "EventData",
    "Medication",
    "MessageCreated",
    "OrderChanged",
    "PrescriptionDosageChanged",
    "PrescriptionSubmitted",
]
