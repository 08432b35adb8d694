"""The reveal of a delivery (:func:`dispatcher.ops.documents.reveal`): the document with its PHI,
and one ``delivery reveal`` audit row naming who asked -- none for a delivery that is not there."""

from __future__ import annotations

import pytest

from dispatcher import dispatch
from dispatcher.contract import catalogue as events
from dispatcher.errors import DeliveryNotFound
from dispatcher.ops import audit, documents
from dispatcher.ops.door import Actor

ORDER = events.CATALOGUE["order_changed"].example()
ENDPOINTS = [{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "key-a-123"}]


def test_a_reveal_returns_the_document_and_is_audited_once(make_runtime) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    (request_id,) = dispatch("order_changed", ORDER)
    document = documents.reveal(runtime, request_id, Actor.console("olivia"))
    assert document == documents.delivery_document(runtime.engine, request_id, runtime.masker)
    assert document["payload"]["data"] == ORDER
    [entry] = audit.entries(runtime.engine)
    assert (entry.actor, entry.action, entry.counts) == ("olivia", "delivery reveal", {})
    assert entry.selection == {"request_id": request_id, "via": "console"}


def test_revealing_a_missing_delivery_audits_nothing(make_runtime) -> None:
    runtime = make_runtime(endpoints=ENDPOINTS)
    with pytest.raises(DeliveryNotFound):
        documents.reveal(runtime, "no-such-id", Actor.cli())
    assert audit.entries(runtime.engine) == []
